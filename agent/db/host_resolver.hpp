#pragma once
// Host names of a connection, resolved under the connect deadline. libpq resolves host names
// with a blocking getaddrinfo() inside PQconnectStart/PQconnectPoll, so a DNS server that does
// not answer would hold the scheduler thread for resolv.conf's timeout × attempts × search
// domains. ResolveHosts() looks the names up first (LookupHosts, util/host_lookup.hpp) and hands
// the addresses to libpq as `hostaddr` while `host` keeps the name, so TLS verification, SNI
// (which Neon routes on), .pgpass and libpq's messages still use the name. Thread-safe.
#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "config/database_url.hpp"
#include "db/db_error.hpp"
#include "util/result.hpp"

namespace pgvigil {

// The input with hostaddr filled in, or a kDns error: the name does not resolve or no answer in
// time.
using ResolvedParams = Result<ConnParams, DbError>;

// Entries that need no lookup (IP literals, socket directories, empty = libpq's default) pass
// through; so does everything when `hostaddr` is set (here or in PGHOSTADDR) or when the
// host/port lists do not line up (libpq then reports the mismatch itself). A missing `host` is
// taken from PGHOST, as libpq would.
// A stop request on `stop` ends the wait for lookups early (shutdown).
ResolvedParams ResolveHosts(const ConnParams& params,
                            std::chrono::steady_clock::time_point deadline,
                            std::stop_token stop = {});

// The pure part: rewrites host/hostaddr (and a per-host port list) so that each address is an
// entry of its own, in order. `addresses[i]` holds the addresses of host entry i; an empty list
// leaves that entry to libpq. `hosts` is the host list the addresses belong to.
ConnParams WithHostAddresses(const ConnParams& params, const std::vector<std::string>& hosts,
                             const std::vector<std::vector<std::string>>& addresses);

}  // namespace pgvigil

#pragma once
// Host name lookups with a deadline. libpq resolves host names with a blocking getaddrinfo()
// inside PQconnectStart/PQconnectPoll, so a DNS server that does not answer would hold the
// scheduler thread for resolv.conf's timeout × attempts × search domains (tens of seconds in
// Kubernetes). ResolveHosts() looks the names up first, on helper threads, and waits at most
// until the deadline; the addresses go to libpq as `hostaddr` while `host` keeps the name, so
// TLS verification, SNI (which Neon routes on) and libpq's messages still use the name.
// A lookup that outlives its deadline keeps running (getaddrinfo cannot be cancelled) and the
// next attempt for the same name waits for it instead of starting another: at most one lookup
// per name, and at most kMaxLookupsInFlight in all, are running at any time. Thread-safe.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/database_url.hpp"
#include "db/db_error.hpp"

namespace pgvigil {

inline constexpr size_t kMaxLookupsInFlight = 8;

struct ResolvedParams {
  ConnParams params;             // the input with hostaddr filled in (when no error)
  std::optional<DbError> error;  // kDns: the name does not resolve or no answer in time
};

// Entries that need no lookup (IP literals, socket directories, empty = libpq's default) pass
// through; so does everything when `hostaddr` is set (here or in PGHOSTADDR) or when the
// host/port lists do not line up (libpq then reports the mismatch itself). A missing `host` is
// taken from PGHOST, as libpq would.
ResolvedParams ResolveHosts(const ConnParams& params,
                            std::chrono::steady_clock::time_point deadline);

// The pure part: rewrites host/hostaddr (and a per-host port list) so that each address is an
// entry of its own, in order. `addresses[i]` holds the addresses of host entry i; an empty list
// leaves that entry to libpq. `hosts` is the host list the addresses belong to.
ConnParams WithHostAddresses(const ConnParams& params, const std::vector<std::string>& hosts,
                             const std::vector<std::vector<std::string>>& addresses);

}  // namespace pgvigil

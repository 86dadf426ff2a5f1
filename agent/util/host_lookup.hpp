#pragma once
// LookupHosts: getaddrinfo() with a deadline. The system resolver blocks for resolv.conf's
// timeout × attempts × search domains when the DNS server does not answer (tens of seconds in
// Kubernetes), and cannot be cancelled; so each lookup runs on a detached helper thread and the
// caller waits at most until its deadline. A lookup that outlives its caller keeps running and
// the next caller for the same name waits for it instead of starting another: at most one
// lookup per name, and at most kMaxLookupsInFlight in all, are running at any time.
// Thread-safe.
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace pgvigil {

inline constexpr std::size_t kMaxLookupsInFlight = 8;

struct LookupError {
  std::string message;     // the resolver's text, or why not in time
  bool timed_out = false;  // no answer by the deadline (or too many lookups still unanswered)
};
// The addresses (numeric, in the resolver's order, no duplicates, never empty) or why not.
using HostLookup = Result<std::vector<std::string>, LookupError>;

// True for IPv4/IPv6 literals (answered without a lookup).
bool IsNumericHost(std::string_view host);

// Looks every name up at once (shared deadline); the results are in the order of `names`.
// IP literals come back as themselves at once. A stop request on `stop` ends the wait early
// (as a timeout), for owners that must shut down within their own deadline.
std::vector<HostLookup> LookupHosts(const std::vector<std::string>& names,
                                    std::chrono::steady_clock::time_point deadline,
                                    std::stop_token stop = {});

// For clients that connect to one address per request (cpp-httplib with a host → address map):
// calls `attempt(address)` for the addresses in turn, starting at `*preferred`, until one returns
// true (done: an answer, or a failure another address would not fix) or all were tried.
// `*preferred` is left at the last address tried, so the next request starts where this one
// ended (callers step it on when that one failed too). `addresses` must not be empty.
template <typename Attempt>
void TryAddresses(const std::vector<std::string>& addresses, std::size_t* preferred,
                  Attempt&& attempt) {
  for (std::size_t tried = 0; tried < addresses.size(); ++tried) {
    if (tried > 0) ++*preferred;
    *preferred %= addresses.size();
    if (attempt(addresses[*preferred])) return;
  }
}

}  // namespace pgvigil

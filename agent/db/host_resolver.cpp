#include "db/host_resolver.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace pgvigil {
namespace {

using Clock = std::chrono::steady_clock;

bool NeedsLookup(const std::string& host) {
  if (host.empty() || host.front() == '/' || host.front() == '@') return false;  // socket
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1;
}

// One getaddrinfo() call running on its own detached thread.
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int gai_error = 0;
  std::vector<std::string> addresses;  // numeric, in the resolver's order, no duplicates
};

class LookupRegistry {
 public:
  // The running lookup for `name`, or a new one; nullptr when too many are running.
  std::shared_ptr<Lookup> Join(const std::string& name, std::string* error) {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(name); it != running_.end()) return it->second;
    if (running_.size() >= kMaxLookupsInFlight) {
      *error = std::to_string(running_.size()) + " earlier DNS lookups are still unanswered";
      return nullptr;
    }
    auto lookup = std::make_shared<Lookup>();
    try {
      std::thread([this, name, lookup] { Run(name, lookup); }).detach();
    } catch (const std::system_error& e) {
      *error = std::string("could not start a DNS lookup thread: ") + e.what();
      return nullptr;
    }
    running_.emplace(name, lookup);
    return lookup;
  }

 private:
  void Run(const std::string& name, const std::shared_ptr<Lookup>& lookup) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;  // as libpq asks
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &list);
    std::vector<std::string> addresses;
    for (const addrinfo* ai = list; rc == 0 && ai != nullptr; ai = ai->ai_next) {
      char text[NI_MAXHOST];
      if (getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) !=
          0) {
        continue;
      }
      bool seen = false;
      for (const auto& a : addresses) seen = seen || a == text;
      if (!seen) addresses.emplace_back(text);
    }
    if (list != nullptr) freeaddrinfo(list);
    {
      std::lock_guard lock(mu_);
      running_.erase(name);
    }
    std::lock_guard lock(lookup->mu);
    lookup->gai_error = rc;
    lookup->addresses = std::move(addresses);
    lookup->done = true;
    lookup->cv.notify_all();
  }

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Lookup>> running_;
};

LookupRegistry& Registry() {
  // Never destroyed: detached lookup threads may still use it while the process exits.
  static auto* registry = new LookupRegistry();
  return *registry;
}

DbError DnsError(const std::string& host, const std::string& why) {
  DbError e =
      ClassifyError("", "could not translate host name \"" + host + "\" to address: " + why);
  e.kind = ErrorKind::kDns;
  return e;
}

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string JoinCommas(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out;
}

}  // namespace

ConnParams WithHostAddresses(const ConnParams& params, const std::vector<std::string>& hosts,
                             const std::vector<std::vector<std::string>>& addresses) {
  const std::vector<std::string> ports = SplitCommas(params.Get("port"));
  const bool per_host_ports = ports.size() > 1;
  std::vector<std::string> out_hosts, out_addrs, out_ports;
  bool any = false;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::vector<std::string> none{""};
    const auto& addrs = i < addresses.size() && !addresses[i].empty() ? addresses[i] : none;
    for (const auto& a : addrs) {
      any = any || !a.empty();
      out_hosts.push_back(hosts[i]);
      out_addrs.push_back(a);
      if (per_host_ports) out_ports.push_back(ports[i]);
    }
  }
  ConnParams out = params;
  if (!any) return out;
  out.Set("host", JoinCommas(out_hosts));
  out.Set("hostaddr", JoinCommas(out_addrs));
  if (per_host_ports) out.Set("port", JoinCommas(out_ports));
  return out;
}

ResolvedParams ResolveHosts(const ConnParams& params, Clock::time_point deadline) {
  ResolvedParams result{params, std::nullopt};
  if (!params.Get("hostaddr").empty() || !EnvOr("PGHOSTADDR", "").empty()) return result;
  ConnParams base = params;
  if (base.Get("host").empty() && !EnvOr("PGHOST", "").empty())
    base.Set("host", EnvOr("PGHOST", ""));
  const std::vector<std::string> hosts = SplitCommas(base.Get("host"));
  const std::vector<std::string> ports = SplitCommas(base.Get("port"));
  if (ports.size() > 1 && ports.size() != hosts.size()) return result;

  // Start every lookup first, then wait for them together: the deadline is shared.
  std::vector<std::shared_ptr<Lookup>> lookups(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (!NeedsLookup(hosts[i])) continue;
    std::string why;
    lookups[i] = Registry().Join(hosts[i], &why);
    if (!lookups[i]) {
      result.error = DnsError(hosts[i], why);
      return result;
    }
  }
  bool any_lookup = false;
  for (const auto& l : lookups) any_lookup = any_lookup || l != nullptr;
  if (!any_lookup) return result;
  // Entries whose name does not resolve are dropped (libpq would only look them up again and
  // move on); the first such error is the answer when no entry is left.
  std::vector<std::string> kept_hosts, kept_ports;
  std::vector<std::vector<std::string>> addresses;
  std::optional<DbError> first_failure;
  const auto started = Clock::now();
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (lookups[i]) {
      Lookup& l = *lookups[i];
      std::unique_lock lock(l.mu);
      if (!l.cv.wait_until(lock, deadline, [&] { return l.done; })) {
        char waited[32];
        std::snprintf(waited, sizeof waited, "%.1f",
                      std::chrono::duration<double>(Clock::now() - started).count());
        result.error = DnsError(hosts[i], std::string("no answer from the DNS server within ") +
                                              waited + " s (the connect deadline)");
        return result;
      }
      if (l.gai_error != 0 || l.addresses.empty()) {
        if (!first_failure) {
          first_failure =
              DnsError(hosts[i], l.gai_error ? gai_strerror(l.gai_error) : "no address");
        }
        continue;
      }
      addresses.push_back(l.addresses);
    } else {
      addresses.emplace_back();
    }
    kept_hosts.push_back(hosts[i]);
    if (ports.size() > 1) kept_ports.push_back(ports[i]);
  }
  if (kept_hosts.empty()) {
    result.error = first_failure;
    return result;
  }
  base.Set("host", JoinCommas(kept_hosts));
  if (ports.size() > 1) base.Set("port", JoinCommas(kept_ports));
  result.params = WithHostAddresses(base, kept_hosts, addresses);
  return result;
}

}  // namespace pgvigil

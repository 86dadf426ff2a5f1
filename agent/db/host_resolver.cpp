#include "db/host_resolver.hpp"

#include "config/settings.hpp"
#include "util/host_lookup.hpp"

namespace pgvigil {
namespace {

using Clock = std::chrono::steady_clock;

bool NeedsLookup(const std::string& host) {
  const bool socket = host.empty() || host.front() == '/' || host.front() == '@';
  return !socket && !IsNumericHost(host);
}

DbError DnsError(const std::string& host, const std::string& why) {
  DbError e =
      ClassifyError("", "could not translate host name \"" + host + "\" to address: " + why);
  e.kind = ErrorKind::kDns;
  return e;
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

ResolvedParams ResolveHosts(const ConnParams& params, Clock::time_point deadline,
                            std::stop_token stop) {
  if (!params.Get("hostaddr").empty() || !ProcessEnv("PGHOSTADDR").value_or("").empty())
    return params;
  ConnParams base = params;
  if (base.Get("host").empty()) base.Set("host", ProcessEnv("PGHOST").value_or(""));
  const std::vector<std::string> hosts = SplitCommas(base.Get("host"));
  const std::vector<std::string> ports = SplitCommas(base.Get("port"));
  if (ports.size() > 1 && ports.size() != hosts.size()) return params;

  std::vector<std::string> names;
  for (const auto& h : hosts) {
    if (NeedsLookup(h)) names.push_back(h);
  }
  if (names.empty()) return params;
  const std::vector<HostLookup> found = LookupHosts(names, deadline, std::move(stop));
  // Entries whose name does not resolve are dropped (libpq would only look them up again and
  // move on); the first such error is the answer when no entry is left. No answer in time is
  // the answer at once.
  std::vector<std::string> kept_hosts, kept_ports;
  std::vector<std::vector<std::string>> addresses;
  std::optional<DbError> first_failure;
  size_t next = 0;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (NeedsLookup(hosts[i])) {
      const HostLookup& l = found[next++];
      if (!l) {
        if (l.error().timed_out) {
          return tl::make_unexpected(
              DnsError(hosts[i], l.error().message + " (the connect deadline)"));
        }
        if (!first_failure) first_failure = DnsError(hosts[i], l.error().message);
        continue;
      }
      addresses.push_back(*l);
    } else {
      addresses.emplace_back();
    }
    kept_hosts.push_back(hosts[i]);
    if (ports.size() > 1) kept_ports.push_back(ports[i]);
  }
  if (kept_hosts.empty()) return tl::make_unexpected(std::move(*first_failure));
  base.Set("host", JoinCommas(kept_hosts));
  if (ports.size() > 1) base.Set("port", JoinCommas(kept_ports));
  return WithHostAddresses(base, kept_hosts, addresses);
}

}  // namespace pgvigil

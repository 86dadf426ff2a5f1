#include "util/host_lookup.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace pgvigil {
namespace {

using Clock = std::chrono::steady_clock;

// One getaddrinfo() call running on its own detached thread.
struct Lookup {
  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false;
  int gai_error = 0;
  std::vector<std::string> addresses;
};

std::vector<std::string> Resolve(const std::string& name, int* gai_error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // as libpq asks
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  *gai_error = getaddrinfo(name.c_str(), nullptr, &hints, &list);
  std::vector<std::string> addresses;
  for (const addrinfo* ai = list; *gai_error == 0 && ai != nullptr; ai = ai->ai_next) {
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
  return addresses;
}

class LookupRegistry {
 public:
  // The running lookup for `name`, or a new one; nullptr (and `error`) when none can start.
  std::shared_ptr<Lookup> Join(const std::string& name, std::string* error) {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(name); it != running_.end()) return it->second;
    if (running_.size() >= kMaxLookupsInFlight) {
      *error = std::to_string(running_.size()) + " earlier DNS lookups are still unanswered";
      return nullptr;
    }
    auto lookup = std::make_shared<Lookup>();
    try {
      std::thread([this, name, lookup] { Run(name, *lookup); }).detach();
    } catch (const std::system_error& e) {
      *error = std::string("could not start a DNS lookup thread: ") + e.what();
      return nullptr;
    }
    running_.emplace(name, lookup);
    return lookup;
  }

 private:
  void Run(const std::string& name, Lookup& lookup) {
    int gai_error = 0;
    std::vector<std::string> addresses;
    try {
      addresses = Resolve(name, &gai_error);
    } catch (...) {  // no exception leaves a thread; the caller sees a failed lookup
      addresses.clear();
      gai_error = EAI_MEMORY;
    }
    {
      std::lock_guard lock(mu_);
      running_.erase(name);
    }
    std::lock_guard lock(lookup.mu);
    lookup.gai_error = gai_error;
    lookup.addresses = std::move(addresses);
    lookup.done = true;
    lookup.cv.notify_all();
  }

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Lookup>> running_;
};

LookupRegistry& Registry() {
  // Never destroyed: detached lookup threads may still use it while the process exits.
  static auto* registry = new LookupRegistry();
  return *registry;
}

}  // namespace

bool IsNumericHost(std::string_view host) {
  const std::string h(host);
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::vector<HostLookup> LookupHosts(const std::vector<std::string>& names,
                                    Clock::time_point deadline, std::stop_token stop) {
  std::vector<HostLookup> results(names.size());
  std::vector<std::shared_ptr<Lookup>> running(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (IsNumericHost(names[i])) {
      results[i] = std::vector<std::string>{names[i]};
    } else {
      std::string error;
      running[i] = Registry().Join(names[i], &error);
      if (!running[i]) results[i] = tl::make_unexpected(LookupError{std::move(error), true});
    }
  }
  const auto started = Clock::now();
  for (size_t i = 0; i < names.size(); ++i) {
    if (!running[i]) continue;
    Lookup& l = *running[i];
    std::unique_lock lock(l.mu);
    if (!l.cv.wait_until(lock, stop, deadline, [&] { return l.done; })) {
      char waited[32];
      std::snprintf(waited, sizeof waited, "%.1f",
                    std::chrono::duration<double>(Clock::now() - started).count());
      results[i] = tl::make_unexpected(
          LookupError{std::string(stop.stop_requested() ? "lookup abandoned after "
                                                        : "no answer from the DNS server within ") +
                          waited + " s",
                      true});
    } else if (l.gai_error != 0) {
      results[i] = tl::make_unexpected(LookupError{gai_strerror(l.gai_error)});
    } else if (l.addresses.empty()) {
      results[i] = tl::make_unexpected(LookupError{"no address"});
    } else {
      results[i] = l.addresses;
    }
  }
  return results;
}

}  // namespace pgvigil

// LookupHosts against the system resolver (/etc/hosts and a name that cannot exist), and the
// address rotation of TryAddresses. A DNS server that never answers is tested at the agent
// level (tests/integration/faults_live_test.cpp), where pgvigil can get a resolv.conf of its own.
#include "util/host_lookup.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace pgvigil {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

TEST_CASE("IsNumericHost: IPv4 and IPv6 literals only", "[util][dns]") {
  CHECK(IsNumericHost("127.0.0.1"));
  CHECK(IsNumericHost("::1"));
  CHECK(IsNumericHost("2001:db8::7"));
  CHECK_FALSE(IsNumericHost("localhost"));
  CHECK_FALSE(IsNumericHost("[::1]"));
  CHECK_FALSE(IsNumericHost(""));
  CHECK_FALSE(IsNumericHost("10.0.0"));
}

TEST_CASE("LookupHosts: names, literals and names that do not exist, in order", "[util][dns]") {
  const auto found =
      LookupHosts({"localhost", "10.1.2.3", "pgvigil-no-such-host.invalid"}, Clock::now() + 10s);
  REQUIRE(found.size() == 3);
  REQUIRE(found[0].has_value());
  CHECK(Contains(*found[0], "127.0.0.1"));
  REQUIRE(found[1].has_value());
  CHECK(*found[1] == std::vector<std::string>{"10.1.2.3"});
  REQUIRE_FALSE(found[2].has_value());
  CHECK_FALSE(found[2].error().timed_out);
  CHECK_FALSE(found[2].error().message.empty());
}

TEST_CASE("LookupHosts: many callers for one name at once all get the answer", "[util][dns]") {
  std::vector<std::vector<HostLookup>> results(6);
  std::vector<std::thread> callers;
  for (auto& r : results) {
    callers.emplace_back([&r] { r = LookupHosts({"localhost"}, Clock::now() + 10s); });
  }
  for (auto& t : callers) t.join();
  for (const auto& r : results) {
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].has_value());
    CHECK(Contains(*r[0], "127.0.0.1"));
  }
}

TEST_CASE("TryAddresses: from the preferred address on, until one is done", "[util][dns]") {
  const std::vector<std::string> addrs = {"a", "b", "c"};
  std::vector<std::string> tried;
  std::size_t preferred = 1;
  TryAddresses(addrs, &preferred, [&](const std::string& a) {
    tried.push_back(a);
    return a == "a";
  });
  CHECK(tried == std::vector<std::string>{"b", "c", "a"});
  CHECK(preferred == 0);  // the next request starts with the one that answered

  tried.clear();
  TryAddresses(addrs, &preferred, [&](const std::string& a) {
    tried.push_back(a);
    return true;
  });
  CHECK(tried == std::vector<std::string>{"a"});

  tried.clear();
  preferred = 7;  // out of range (the list shrank): wraps
  TryAddresses(addrs, &preferred, [&](const std::string& a) {
    tried.push_back(a);
    return false;
  });
  CHECK(tried == std::vector<std::string>{"b", "c", "a"});
  CHECK(preferred == 0);
}

}  // namespace
}  // namespace pgvigil

// GuardedServer overrides a private virtual of cpp-httplib (process_and_close_socket) and calls a
// protected one (process_request). Both are internals that change between releases without
// notice, so the server is pinned to the version it was checked against. The build already stops
// on another version (static_assert in agent/http/guarded_server.cpp); this test says so by name
// in the test report too, and checks that the override is the one cpp-httplib calls.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "http/guarded_server.hpp"

TEST_CASE("cpp-httplib is the version GuardedServer was checked against") {
  INFO("cpp-httplib " << CPPHTTPLIB_VERSION << " found, GuardedServer is pinned to "
                      << pgvigil::kPinnedHttplibVersion
                      << ": re-check process_and_close_socket/process_request in httplib.h, "
                         "then change kPinnedHttplibVersion (agent/http/guarded_server.hpp)");
  REQUIRE(std::string(CPPHTTPLIB_VERSION) == std::string(pgvigil::kPinnedHttplibVersion));
}

TEST_CASE("the connection front, not cpp-httplib's thread pool, serves a request") {
  pgvigil::GuardedServer server(1);
  server.Get("/ping", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("pong", "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread t([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/ping");
  server.stop();
  t.join();
  REQUIRE(res);
  CHECK(res->body == "pong");
  // Every request went through the front's hand-over (process_and_close_socket overridden).
  CHECK(server.stats().accepted.load() >= 1);
  CHECK(server.stats().requests.load() >= 1);
}

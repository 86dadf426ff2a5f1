// FrameRequest: when a buffered HTTP request is whole, incomplete or refused before parsing.
#include "http/request_frame.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace pgvigil;

TEST_CASE("FrameRequest: whole requests, with and without a body", "[http][frame]") {
  const std::string get = "GET /livez?x=1 HTTP/1.1\r\nHost: t\r\n\r\n";
  auto f = FrameRequest(get + "GET /next");
  CHECK(f.verdict == FrameVerdict::kComplete);
  CHECK(f.length == get.size());
  CHECK(f.probe);

  const std::string post = "POST /wake HTTP/1.1\r\ncontent-LENGTH:  3 \r\n\r\nabc";
  f = FrameRequest(post);
  CHECK(f.verdict == FrameVerdict::kComplete);
  CHECK(f.length == post.size());
  CHECK_FALSE(f.probe);

  CHECK(FrameRequest("GET /metrics HTTP/1.1\r\n\r\n").probe == false);
  CHECK(FrameRequest("GET /health/db HTTP/1.1\r\n\r\n").probe);
}

TEST_CASE("FrameRequest: incomplete until the head and the declared body are in", "[http][frame]") {
  CHECK(FrameRequest("").verdict == FrameVerdict::kIncomplete);
  CHECK(FrameRequest("GET /livez HTTP/1.1\r\nHost: t\r\n").verdict == FrameVerdict::kIncomplete);
  auto f =
      FrameRequest("POST /wake HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nab");
  CHECK(f.verdict == FrameVerdict::kIncomplete);
  CHECK(f.expects_continue);
}

TEST_CASE("FrameRequest: refusals name the status", "[http][frame]") {
  CHECK(FrameRequest("GET /" + std::string(kMaxRequestLine + 1, 'a')).status == 414);
  CHECK(FrameRequest("GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'b')).status == 431);
  CHECK(FrameRequest("POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").status == 413);
  CHECK(FrameRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status == 411);
  CHECK(FrameRequest("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").status == 400);
  CHECK(FrameRequest("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").status ==
        400);
  CHECK(
      FrameRequest("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab").verdict ==
      FrameVerdict::kComplete);
  // However it is trickled, a request never stays incomplete past kMaxRequestBytes.
  CHECK(FrameRequest("GET / HTTP/1.1\r\n" + std::string(kMaxRequestBytes, 'x')).verdict ==
        FrameVerdict::kRefuse);
}

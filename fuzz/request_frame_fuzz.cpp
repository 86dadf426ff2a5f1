// libFuzzer target: FrameRequest (agent/http/request_frame.hpp) on arbitrary bytes, as a client
// may send them. Oracles: never crashes; a whole request never claims more bytes than arrived;
// a refusal names a 4xx status; nothing stays incomplete past kMaxRequestBytes; and framing is
// stable: the bytes of a whole request frame the same way on their own. Built by fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/request_frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const pgvigil::RequestFrame f = pgvigil::FrameRequest(in);
  switch (f.verdict) {
    case pgvigil::FrameVerdict::kIncomplete:
      if (size >= pgvigil::kMaxRequestBytes) std::abort();
      break;
    case pgvigil::FrameVerdict::kRefuse:
      if (f.status < 400 || f.status > 499 || f.reason.empty()) std::abort();
      break;
    case pgvigil::FrameVerdict::kComplete: {
      if (f.length == 0 || f.length > size || f.length > pgvigil::kMaxRequestBytes) std::abort();
      const pgvigil::RequestFrame again = pgvigil::FrameRequest(in.substr(0, f.length));
      if (again.verdict != pgvigil::FrameVerdict::kComplete || again.length != f.length) {
        std::abort();
      }
      break;
    }
  }
  return 0;
}

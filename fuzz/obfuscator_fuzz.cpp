// libFuzzer target for the query obfuscator: any input must give bounded, valid UTF-8 output,
// obfuscation must be idempotent, and the sanitizers must stay quiet. Built by fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sampling/query_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t max_len = size % 97;
  std::string capped = pgvigil::ObfuscateQuery(input, max_len);
  if (capped.size() > max_len) std::abort();
  if (pgvigil::SanitizeUtf8(capped) != capped) std::abort();
  std::string full = pgvigil::ObfuscateQuery(input);
  if (pgvigil::SanitizeUtf8(full) != full) std::abort();
  if (pgvigil::ObfuscateQuery(full) != full) std::abort();
  (void)pgvigil::QueryFingerprint(full);
  for (auto mode : {pgvigil::QueryTextMode::kObfuscated, pgvigil::QueryTextMode::kRaw,
                    pgvigil::QueryTextMode::kNone}) {
    pgvigil::QueryText q = pgvigil::PrepareQueryText(input, mode, max_len);
    if (q.text.size() > max_len || q.fingerprint.size() != 16) std::abort();
  }
  return 0;
}

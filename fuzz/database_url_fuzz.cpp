// libFuzzer target for the database URL / conninfo parser. Any input must give exactly one of
// parameters or an error, never crash, and never leak a password into the error message or the
// redacted display form. The first input byte picks a shape: raw text, or a URL / key=value string
// with a known password and fuzzed surroundings (so leaks can be checked). Built by fuzz/run.sh.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/database_url.hpp"

namespace {

constexpr std::string_view kSecret = "Fz9SecretPw";

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// `needle` occurs with no letter or digit right before or after it.
bool ContainsWord(std::string_view haystack, std::string_view needle) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1)) {
    const size_t end = at + needle.size();
    if ((at == 0 || !word(haystack[at - 1])) && (end == haystack.size() || !word(haystack[end]))) {
      return true;
    }
  }
  return false;
}

void CheckRoundTrip(const pgvigil::ConnParams& p) {
  // The redacted form is documented as safe for logs; it must parse again.
  (void)pgvigil::ParseDatabaseUrl(p.Redacted());
  (void)p.Host();
  (void)p.Port();
  (void)p.Database();
  (void)p.User();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t shape = data[0] % 4;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string input;
  bool has_known_secret = false;
  switch (shape) {
    case 0:
      input.assign(rest);
      break;
    case 1:
      input = "postgresql://user:" + std::string(kSecret) + "@" + std::string(rest);
      has_known_secret = true;
      break;
    case 2:
      input = "postgresql+asyncpg://u:" + std::string(kSecret) + "@h/db?" + std::string(rest);
      has_known_secret = true;
      break;
    case 3:
      input = "password=" + std::string(kSecret) + " " + std::string(rest);
      has_known_secret = true;
      break;
  }
  // A secret that also appears elsewhere in the input may legitimately show up (as a host, say).
  if (has_known_secret && Contains(rest, kSecret.substr(0, 4))) has_known_secret = false;

  pgvigil::ParsedUrl parsed = pgvigil::ParseDatabaseUrl(input);
  if (!parsed) {
    if (parsed.error().message.empty()) std::abort();
    if (has_known_secret && Contains(parsed.error().message, kSecret)) std::abort();
    return 0;
  }
  const pgvigil::ConnParams& p = *parsed;
  for (const auto& [key, value] : p.params) {
    if (key.empty() || value.empty()) std::abort();  // documented: no empty values
  }
  const std::string redacted = p.Redacted();
  if (has_known_secret && Contains(redacted, kSecret)) std::abort();
  for (const std::string& secret : p.Secrets()) {
    // A secret made only of '*' is found again inside the "***" mask itself: not a leak.
    if (secret.find_first_not_of('*') == std::string::npos) continue;
    // The scrubber must remove every secret it is told about; one shorter than 8 characters
    // wherever it stands as a word of its own (inside a longer word it is left, by contract).
    std::string scrubbed = pgvigil::ScrubSecrets(input, p.Secrets());
    // A secret with a '*' can be spelled again by the text before a mask plus the mask:
    // "sslpassword=lpassword=*" scrubs to "sslpassword=***", which holds "lpassword=*" without
    // leaking it. Look for such a secret with the masks blanked out.
    if (secret.find('*') != std::string::npos) {
      for (size_t at = scrubbed.find("***"); at != std::string::npos;
           at = scrubbed.find("***", at + 3)) {
        scrubbed.replace(at, 3, "\x01\x01\x01");
      }
    }
    if (secret.size() < 8 ? ContainsWord(scrubbed, secret) : Contains(scrubbed, secret)) {
      std::abort();
    }
  }
  CheckRoundTrip(p);
  (void)pgvigil::GuessSecretsInText(input);
  return 0;
}

#include "config/database_url.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "config/suggest.hpp"

namespace pgvigil {
namespace {

constexpr const char* kExampleUrl = "postgresql://user:password@host:5432/dbname?sslmode=require";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lenient: malformed escapes stay as they are (libpq reports them later, properly).
std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Scheme and the offset just past "://", or nullopt for a key=value string.
struct Scheme {
  std::string name;  // lower-case
  size_t rest;
};
std::optional<Scheme> FindScheme(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  for (size_t i = 0; i < sep; ++i) {
    const unsigned char c = static_cast<unsigned char>(url[i]);
    if (!std::isalnum(c) && c != '+' && c != '.' && c != '-') return std::nullopt;
  }
  return Scheme{Lower(url.substr(0, sep)), sep + 3};
}

// Where the host part begins, found the way libpq does: after an '@' before the first '/'.
size_t HostBegin(std::string_view url, size_t rest) {
  const size_t stop = url.find_first_of("@/", rest);
  return stop != std::string_view::npos && url[stop] == '@' ? stop + 1 : rest;
}

// Best-effort guesses at passwords in text that may not parse (a URL libpq rejected, a config file
// with a syntax error), so that even raw error texts (some quote the whole URI) can be scrubbed.
// `url_only`: the text is one URL, so its userinfo ends exactly where libpq thinks it does.
std::vector<std::string> GuessSecrets(std::string_view input, bool url_only) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view raw) {
    if (raw.empty()) return;
    out.emplace_back(raw);
    out.push_back(PercentDecode(raw));
  };
  size_t sep = 0;
  while ((sep = input.find("://", sep)) != std::string_view::npos) {
    sep += 3;
    const char* stops = url_only ? "@/" : "@/ \t\r\n\"'";
    const size_t stop = input.find_first_of(stops, sep);
    if (stop == std::string_view::npos || input[stop] != '@') continue;
    const std::string_view userinfo = input.substr(sep, stop - sep);
    const size_t colon = userinfo.find(':');
    if (colon != std::string_view::npos) add(userinfo.substr(colon + 1));
    if (url_only) break;
  }
  for (std::string_view key : {"password=", "sslpassword="}) {
    size_t pos = 0;
    while ((pos = input.find(key, pos)) != std::string_view::npos) {
      pos += key.size();
      size_t end = pos;
      if (end < input.size() && input[end] == '\'') {
        ++pos;
        end = input.find('\'', pos);
        if (end == std::string_view::npos) end = input.size();
      } else {
        while (end < input.size() &&
               std::string_view("& \t\r\n\"").find(input[end]) == std::string_view::npos) {
          ++end;
        }
      }
      add(input.substr(pos, end - pos));
    }
  }
  return out;
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

std::vector<std::string> LibpqKeywords() {
  std::vector<std::string> out;
  PQconninfoOption* defaults = PQconndefaults();
  if (defaults == nullptr) return out;
  for (PQconninfoOption* o = defaults; o->keyword != nullptr; ++o) {
    // 'D' marks debug options libpq itself hides from users.
    if (o->dispchar != nullptr && o->dispchar[0] == 'D') continue;
    out.emplace_back(o->keyword);
  }
  PQconninfoFree(defaults);
  return out;
}

std::string UnknownParameterMessage(const std::string& name) {
  std::string msg = "database URL: unknown parameter \"" + name + "\"";
  const std::vector<std::string> keywords = LibpqKeywords();
  std::string closest = ClosestMatch(name, keywords);
  if (Lower(name) == "ssl") closest = "sslmode";
  if (!closest.empty()) msg += " (did you mean \"" + closest + "\"?)";
  msg +=
      "; remove it or use one libpq accepts: sslmode, sslrootcert, sslcert, sslkey, "
      "connect_timeout, application_name, options, target_session_attrs, channel_binding, "
      "keepalives, ...";
  return msg;
}

// Extracts X from a libpq message of the form `<prefix>"X"`.
std::optional<std::string> QuotedAfter(const std::string& message, std::string_view prefix) {
  if (message.rfind(prefix, 0) != 0) return std::nullopt;
  const size_t open = prefix.size();
  const size_t close = message.rfind('"');
  if (open >= message.size() || message[open] != '"' || close <= open) return std::nullopt;
  return message.substr(open + 1, close - open - 1);
}

UrlError TranslateLibpqError(std::string message, const std::string& original,
                             const std::string& normalized) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::vector<std::string> secrets = GuessSecrets(original, true);
  for (const std::string& s : GuessSecrets(normalized, true)) secrets.push_back(s);

  std::string text;
  auto param = QuotedAfter(message, "invalid URI query parameter: ");
  if (!param) param = QuotedAfter(message, "invalid connection option ");
  if (param) {
    text = UnknownParameterMessage(*param);
  } else {
    // Some libpq texts quote the whole URI; never echo it.
    message = ReplaceAll(message, original, "<url>");
    message = ReplaceAll(message, normalized, "<url>");
    text = "database URL is not valid: " + message;
    if (message.find("percent-encoded") != std::string::npos) {
      text +=
          "; percent-encode special characters in the user and password (\"@\" as %40, "
          "\"/\" as %2F, \":\" as %3A, \"%\" as %25)";
    } else {
      text += std::string("; expected e.g. ") + kExampleUrl;
    }
  }
  return UrlError{ScrubSecrets(std::move(text), secrets)};
}

// asyncpg spells TLS as ssl=<mode>; libpq knows only sslmode.
std::optional<std::string> MapAsyncpgSsl(std::string_view value) {
  const std::string v = Lower(value);
  if (v == "require" || v == "true") return "require";
  if (v == "disable" || v == "false") return "disable";
  if (v == "prefer" || v == "allow" || v == "verify-ca" || v == "verify-full") return v;
  return std::nullopt;
}

struct Normalized {
  std::string conninfo;
  std::optional<UrlError> error;
};

Normalized Normalize(const std::string& url) {
  auto scheme = FindScheme(url);
  if (!scheme) return {url, std::nullopt};  // key=value string; libpq validates it
  const std::string& name = scheme->name;
  static constexpr std::string_view kDrivers[] = {"asyncpg", "psycopg2", "psycopg", "pg8000"};
  bool known = name == "postgresql" || name == "postgres";
  for (std::string_view driver : kDrivers) {
    known = known || name == "postgresql+" + std::string(driver) ||
            name == "postgres+" + std::string(driver);
  }
  if (!known) {
    std::string shown = url.substr(0, scheme->rest - 3);
    return {"", UrlError{"database URL: unsupported scheme \"" + shown +
                         "\"; use postgresql:// (postgres:// and SQLAlchemy's "
                         "postgresql+asyncpg://, +psycopg2://, +psycopg:// are accepted too)"}};
  }
  std::string out = "postgresql://";
  const size_t query = url.find('?', HostBegin(url, scheme->rest));
  if (query == std::string::npos) return {out + url.substr(scheme->rest), std::nullopt};
  out += url.substr(scheme->rest, query + 1 - scheme->rest);

  std::vector<std::string> kept;
  std::optional<std::string> ssl_mode;  // from ssl=
  std::optional<std::string> sslmode;   // from sslmode=
  size_t start = query + 1;
  while (start <= url.size()) {
    size_t amp = url.find('&', start);
    if (amp == std::string::npos) amp = url.size();
    const std::string item = url.substr(start, amp - start);
    start = amp + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = PercentDecode(item.substr(0, eq));
    const std::string value = eq == std::string::npos ? "" : PercentDecode(item.substr(eq + 1));
    if (key == "ssl") {
      ssl_mode = MapAsyncpgSsl(value);
      if (!ssl_mode) {
        return {"", UrlError{"database URL: ssl=\"" + value +
                             "\" is not understood; use sslmode=disable|allow|prefer|require|"
                             "verify-ca|verify-full (ssl=true|require|false|disable are accepted "
                             "for asyncpg URLs)"}};
      }
      continue;
    }
    if (key == "sslmode") sslmode = value;
    kept.push_back(item);
  }
  if (ssl_mode && sslmode && *ssl_mode != *sslmode) {
    return {"", UrlError{"database URL: ssl=" + *ssl_mode + " contradicts sslmode=" + *sslmode +
                         "; keep only sslmode"}};
  }
  if (ssl_mode && !sslmode) kept.push_back("sslmode=" + *ssl_mode);
  for (size_t i = 0; i < kept.size(); ++i) {
    if (i > 0) out += '&';
    out += kept[i];
  }
  if (kept.empty()) out.pop_back();  // the '?'
  return {out, std::nullopt};
}

// Matches `secret[k..]` at text[j..] with every character either raw or %XX-encoded (any hex
// case; '+' for a space), so fully, partly and un-encoded spellings are all caught. Returns the
// end of the longest match, or npos. Branches only where a literal '%' meets "%25".
// Secrets shorter than this are scrubbed only as whole words (see ScrubSecrets).
constexpr size_t kShortSecret = 8;

size_t MatchSecret(const std::string& text, size_t j, const std::string& secret, size_t k) {
  if (k == secret.size()) return j;
  if (j >= text.size()) return std::string::npos;
  size_t best = std::string::npos;
  if (text[j] == '%' && j + 2 < text.size() && HexValue(text[j + 1]) >= 0 &&
      HexValue(text[j + 2]) >= 0 &&
      static_cast<char>(HexValue(text[j + 1]) * 16 + HexValue(text[j + 2])) == secret[k]) {
    best = MatchSecret(text, j + 3, secret, k + 1);
  }
  if (best == std::string::npos && (text[j] == secret[k] || (secret[k] == ' ' && text[j] == '+'))) {
    best = MatchSecret(text, j + 1, secret, k + 1);
  }
  return best;
}

bool IsPort(const std::string& s) {
  if (s.empty() || s.size() > 5) return false;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  const int port = std::stoi(s);
  return port >= 1 && port <= 65535;
}

// libpq checks these only when connecting; a typo should fail at start-up with a clear message.
std::optional<UrlError> CheckValues(const ConnParams& params) {
  for (const std::string& port : SplitCommas(params.Get("port"))) {
    if (!port.empty() && !IsPort(port)) {
      return UrlError{"database URL: port \"" + port + "\" is not a port number (1..65535)"};
    }
  }
  if (const std::string mode = params.Get("sslmode"); !mode.empty()) {
    static constexpr std::string_view kModes[] = {"disable", "allow",     "prefer",
                                                  "require", "verify-ca", "verify-full"};
    if (std::find(std::begin(kModes), std::end(kModes), mode) == std::end(kModes)) {
      return UrlError{"database URL: sslmode \"" + mode +
                      "\" is not valid; use disable, allow, prefer, require, verify-ca or "
                      "verify-full"};
    }
  }
  if (const std::string t = params.Get("connect_timeout"); !t.empty()) {
    if (t.size() > 9 ||
        !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return UrlError{"database URL: connect_timeout \"" + t +
                      "\" must be a whole number of seconds"};
    }
  }
  return std::nullopt;
}

}  // namespace

ParsedUrl ParseDatabaseUrl(std::string_view url_in) {
  const std::string url = Trim(url_in);
  if (url.empty()) {
    return tl::make_unexpected(
        UrlError{std::string("database URL is empty; set it like ") + kExampleUrl});
  }
  Normalized normalized = Normalize(url);
  if (normalized.error) {
    normalized.error->message = ScrubSecrets(normalized.error->message, GuessSecrets(url, true));
    return tl::make_unexpected(std::move(*normalized.error));
  }
  char* errmsg = nullptr;
  PQconninfoOption* options = PQconninfoParse(normalized.conninfo.c_str(), &errmsg);
  if (options == nullptr) {
    std::string message = errmsg != nullptr ? errmsg : "out of memory";
    if (errmsg != nullptr) PQfreemem(errmsg);
    return tl::make_unexpected(TranslateLibpqError(std::move(message), url, normalized.conninfo));
  }
  ConnParams params;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && o->val[0] != '\0') params.params.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  if (auto error = CheckValues(params)) {
    error->message = ScrubSecrets(error->message, params.Secrets());
    return tl::make_unexpected(std::move(*error));
  }
  return params;
}

std::vector<std::string> GuessSecretsInText(std::string_view text) {
  return GuessSecrets(text, false);
}

std::string ScrubSecrets(std::string text, const std::vector<std::string>& secrets) {
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    // A short secret also occurs by chance inside ordinary words ("x" in "expected"): it is
    // only scrubbed where it stands as a word of its own.
    const bool whole_words_only = secret.size() < kShortSecret;
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      size_t end = MatchSecret(text, i, secret, 0);
      if (end != std::string::npos && whole_words_only &&
          ((i > 0 && word_char(text[i - 1])) || (end < text.size() && word_char(text[end])))) {
        end = std::string::npos;
      }
      if (end != std::string::npos) {
        out += "***";
        i = end;
      } else {
        out += text[i];
        ++i;
      }
    }
    text = std::move(out);
  }
  return text;
}

}  // namespace pgvigil

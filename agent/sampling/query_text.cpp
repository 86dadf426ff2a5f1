#include "sampling/query_text.hpp"

#include <array>
#include <cstring>
#include <vector>

namespace pgvigil {
namespace {

// A small lexer modelled on PostgreSQL's scan.l: just enough to tell literals from the rest.
enum class Tok { kWord, kQuotedIdent, kLiteral, kParam, kOperator, kPunct };

struct Token {
  Tok kind;
  std::string_view text;  // into the input; kLiteral tokens render as "?"
  bool space_before;
};

bool IsAsciiAlpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsHexDigit(unsigned char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsIdentStart(unsigned char c) { return IsAsciiAlpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return IsIdentStart(c) || IsDigit(c) || c == '$'; }
// Whitespace for folding; other control characters are treated as whitespace too.
bool IsSpaceOrControl(unsigned char c) { return c <= 0x20 || c == 0x7f; }
bool IsOpChar(unsigned char c) { return c != 0 && std::strchr("+-*/<>=~!@#%^&|`?", c) != nullptr; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// Index just past a '...' string starting at `open` (the quote). `backslash_escapes` for E''.
// Unterminated: the end of the text.
std::size_t ScanQuoted(std::string_view s, std::size_t open, char quote, bool backslash_escapes,
                       bool* closed = nullptr) {
  if (closed != nullptr) *closed = false;
  std::size_t j = open + 1;
  while (j < s.size()) {
    char c = s[j];
    if (backslash_escapes && c == '\\') {
      j += 2;
      continue;
    }
    if (c == quote) {
      if (j + 1 < s.size() && s[j + 1] == quote) {
        j += 2;
        continue;
      }
      if (closed != nullptr) *closed = true;
      return j + 1;
    }
    ++j;
  }
  return s.size();
}

std::size_t ScanNumber(std::string_view s, std::size_t i) {
  std::size_t j = i;
  auto at = [&](std::size_t k) -> unsigned char { return k < s.size() ? s[k] : 0; };
  if (at(j) == '0' && std::strchr("xXoObB", at(j + 1)) != nullptr && at(j + 1) != 0 &&
      IsHexDigit(at(j + 2))) {
    j += 2;
    while (IsHexDigit(at(j)) || at(j) == '_') ++j;
  } else {
    while (IsDigit(at(j)) || at(j) == '_') ++j;
    if (at(j) == '.' && at(j + 1) != '.') {
      ++j;
      while (IsDigit(at(j)) || at(j) == '_') ++j;
    }
    if ((at(j) == 'e' || at(j) == 'E') &&
        (IsDigit(at(j + 1)) || ((at(j + 1) == '+' || at(j + 1) == '-') && IsDigit(at(j + 2))))) {
      j += 2;
      while (IsDigit(at(j))) ++j;
    }
  }
  // Trailing junk such as "123abc" is part of the same literal as far as we are concerned.
  while (IsIdentChar(at(j))) ++j;
  return j;
}

// A dollar-quote delimiter ($$ or $tag$) starting at `i`, or 0 when there is none.
std::size_t DollarTagLength(std::string_view s, std::size_t i) {
  std::size_t j = i + 1;
  if (j < s.size() && s[j] == '$') return 2;
  if (j >= s.size() || !IsIdentStart(static_cast<unsigned char>(s[j]))) return 0;
  while (j < s.size() && IsIdentChar(static_cast<unsigned char>(s[j])) && s[j] != '$') ++j;
  if (j < s.size() && s[j] == '$') return j + 1 - i;
  return 0;
}

// `comments`, when given, receives the bodies of the closed block comments (outside literals).
std::vector<Token> Tokenize(std::string_view s, std::vector<std::string_view>* comments = nullptr) {
  std::vector<Token> out;
  bool space = false;
  std::size_t i = 0;
  auto emit = [&](Tok kind, std::size_t begin, std::size_t end) {
    out.push_back(Token{kind, s.substr(begin, end - begin), space});
    space = false;
    i = end;
  };
  while (i < s.size()) {
    const unsigned char c = s[i];
    const unsigned char next = i + 1 < s.size() ? s[i + 1] : 0;
    if (IsSpaceOrControl(c)) {
      space = true;
      ++i;
    } else if (c == '-' && next == '-') {
      std::size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl + 1;
      space = true;
    } else if (c == '/' && next == '*') {
      int depth = 1;  // PostgreSQL nests block comments
      i += 2;
      const std::size_t body = i;
      while (i < s.size() && depth > 0) {
        if (s[i] == '/' && i + 1 < s.size() && s[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (s[i] == '*' && i + 1 < s.size() && s[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      }
      if (comments != nullptr && depth == 0) comments->push_back(s.substr(body, i - 2 - body));
      space = true;
    } else if (c == '\'') {
      // Where a plain string holding a backslash ends depends on the session's
      // standard_conforming_strings ('x\', SECRET, ' is one literal when it is off): unsure
      // how it ends, hide everything from its quote on, as for an unterminated string.
      const std::size_t end = ScanQuoted(s, i, '\'', false);
      const bool ambiguous = s.substr(i, end - i).find('\\') != std::string_view::npos;
      emit(Tok::kLiteral, i, ambiguous ? s.size() : end);
    } else if (c == '"') {
      bool closed = false;
      std::size_t end = ScanQuoted(s, i, '"', false, &closed);
      emit(closed ? Tok::kQuotedIdent : Tok::kLiteral, i, end);
    } else if (IsDigit(c) || (c == '.' && IsDigit(next))) {
      emit(Tok::kLiteral, i, ScanNumber(s, i));
    } else if (IsIdentStart(c)) {
      std::size_t j = i;
      while (j < s.size() && IsIdentChar(static_cast<unsigned char>(s[j]))) ++j;
      std::string_view word = s.substr(i, j - i);
      const char after = j < s.size() ? s[j] : 0;
      const char after2 = j + 1 < s.size() ? s[j + 1] : 0;
      if (after == '\'' && EqualsIgnoreCase(word, "e")) {
        emit(Tok::kLiteral, i, ScanQuoted(s, j, '\'', true));
      } else if (after == '\'' && (EqualsIgnoreCase(word, "b") || EqualsIgnoreCase(word, "x") ||
                                   EqualsIgnoreCase(word, "n"))) {
        emit(Tok::kLiteral, i, ScanQuoted(s, j, '\'', false));
      } else if (after == '&' && after2 == '\'' && EqualsIgnoreCase(word, "u")) {
        emit(Tok::kLiteral, i, ScanQuoted(s, j + 1, '\'', false));
      } else if (after == '&' && after2 == '"' && EqualsIgnoreCase(word, "u")) {
        bool closed = false;
        std::size_t end = ScanQuoted(s, j + 1, '"', false, &closed);
        emit(closed ? Tok::kQuotedIdent : Tok::kLiteral, i, end);
      } else {
        emit(Tok::kWord, i, j);
      }
    } else if (c == '$') {
      if (IsDigit(next)) {
        std::size_t j = i + 1;
        while (j < s.size() && IsDigit(static_cast<unsigned char>(s[j]))) ++j;
        emit(Tok::kParam, i, j);
      } else if (std::size_t tag_len = DollarTagLength(s, i); tag_len > 0) {
        std::string_view tag = s.substr(i, tag_len);
        std::size_t close = s.find(tag, i + tag_len);
        emit(Tok::kLiteral, i, close == std::string_view::npos ? s.size() : close + tag_len);
      } else {
        emit(Tok::kPunct, i, i + 1);
      }
    } else if (IsOpChar(c)) {
      std::size_t j = i + 1;
      while (j < s.size() && IsOpChar(static_cast<unsigned char>(s[j]))) {
        const char n = j + 1 < s.size() ? s[j + 1] : 0;
        if ((s[j] == '-' && n == '-') || (s[j] == '/' && n == '*')) break;
        ++j;
      }
      emit(Tok::kOperator, i, j);
    } else {
      emit(Tok::kPunct, i, i + 1);  // ( ) [ ] , ; : . and stray bytes such as '\\' '{'
    }
  }
  return out;
}

bool IsComparison(const Token& t) {
  if (t.kind != Tok::kOperator) return false;
  static constexpr std::array<std::string_view, 7> kOps = {"=", "<>", "!=", "<", ">", "<=", ">="};
  for (auto op : kOps) {
    if (t.text == op) return true;
  }
  return false;
}

bool IsPunct(const Token& t, char c) {
  return t.kind == Tok::kPunct && t.text.size() == 1 && t.text[0] == c;
}

bool IsKeyword(const Token& t, std::string_view kw) {
  return t.kind == Tok::kWord && EqualsIgnoreCase(t.text, kw);
}

// A sign before a number is part of the literal when what precedes cannot end an operand.
bool SignIsUnary(const std::vector<Token>& out) {
  if (out.empty()) return true;
  const Token& p = out.back();
  if (p.kind == Tok::kOperator) return true;
  if (p.kind == Tok::kPunct) return !IsPunct(p, ')') && !IsPunct(p, ']');
  if (p.kind == Tok::kWord) {
    static constexpr std::array<std::string_view, 16> kKeywords = {
        "select", "where", "and",     "or",    "not",    "then",   "else", "when",
        "return", "in",    "between", "limit", "offset", "values", "is",   "set"};
    for (auto kw : kKeywords) {
      if (EqualsIgnoreCase(p.text, kw)) return true;
    }
  }
  return false;
}

bool IsLiteral(const Token& t) { return t.kind == Tok::kLiteral; }

// Rewrites the token stream: booleans in comparisons, unary signs, adjacent literals and
// IN (...) / ARRAY[...] lists of literals.
std::vector<Token> Simplify(std::vector<Token> in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i].kind == Tok::kWord &&
        (EqualsIgnoreCase(in[i].text, "true") || EqualsIgnoreCase(in[i].text, "false"))) {
      bool compared =
          (i > 0 && IsComparison(in[i - 1])) || (i + 1 < in.size() && IsComparison(in[i + 1]));
      if (compared) in[i].kind = Tok::kLiteral;
    }
  }
  std::vector<Token> out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    Token t = in[i];
    if (t.kind == Tok::kOperator && (t.text == "-" || t.text == "+") && i + 1 < in.size() &&
        IsLiteral(in[i + 1]) && !in[i + 1].space_before && SignIsUnary(out)) {
      Token lit = in[i + 1];
      lit.space_before = t.space_before;
      out.push_back(lit);
      ++i;
      continue;
    }
    if (IsLiteral(t) && !out.empty() && IsLiteral(out.back())) continue;  // 'a' 'b' continuation
    out.push_back(t);
    // IN ( ?, ?, ... ) and ARRAY[ ?, ?, ... ] -> a single ?
    const bool list_close = IsPunct(t, ')') || IsPunct(t, ']');
    if (!list_close || out.size() < 4) continue;
    const char open = IsPunct(t, ')') ? '(' : '[';
    std::size_t k = out.size() - 2;  // last element
    std::size_t elements = 0;
    bool ok = true;
    while (true) {
      if (!IsLiteral(out[k])) {
        ok = false;
        break;
      }
      ++elements;
      if (k == 0) {
        ok = false;
        break;
      }
      --k;
      if (IsPunct(out[k], ',')) {
        if (k == 0) {
          ok = false;
          break;
        }
        --k;
        continue;
      }
      break;
    }
    if (!ok || elements < 2 || !IsPunct(out[k], open) || k == 0) continue;
    const Token& owner = out[k - 1];
    if (!(open == '(' ? IsKeyword(owner, "in") : IsKeyword(owner, "array"))) continue;
    Token close = out.back();
    Token first = out[k + 1];
    out.resize(k + 1);
    out.push_back(first);
    out.push_back(close);
  }
  return out;
}

std::string Render(const std::vector<Token>& tokens) {
  std::string out;
  for (const Token& t : tokens) {
    if (t.space_before && !out.empty()) out.push_back(' ');
    if (t.kind == Tok::kLiteral) {
      out.push_back('?');
    } else {
      out.append(t.text);
    }
  }
  return out;
}

}  // namespace

std::string CapQueryLength(std::string_view text, std::size_t max_len, bool* truncated) {
  if (truncated != nullptr) *truncated = false;
  if (text.size() <= max_len) return std::string(text);
  if (truncated != nullptr) *truncated = true;
  const bool with_marker = max_len >= kTruncationMarker.size();
  std::size_t cut = with_marker ? max_len - kTruncationMarker.size() : max_len;
  // Back off to the start of a UTF-8 sequence so the prefix stays valid.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out(text.substr(0, cut));
  if (with_marker) out.append(kTruncationMarker);
  return out;
}

std::string ObfuscateQuery(std::string_view text, std::size_t max_len) {
  std::string rendered = SanitizeUtf8(Render(Simplify(Tokenize(text))));
  return CapQueryLength(rendered, max_len);
}

std::optional<Traceparent> QueryTraceparent(std::string_view text) {
  std::vector<std::string_view> comments;
  Tokenize(text, &comments);
  // sqlcommenter appends its comment, so the last one that parses wins.
  for (auto it = comments.rbegin(); it != comments.rend(); ++it) {
    if (auto tp = SqlCommenterTraceparent(*it)) return tp;
  }
  return std::nullopt;
}

std::string QueryFingerprint(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[h & 0xf];
    h >>= 4;
  }
  return out;
}

QueryText PrepareQueryText(std::string_view raw, QueryTextMode mode, std::size_t max_len) {
  QueryText q;
  std::string obfuscated = ObfuscateQuery(raw);
  q.fingerprint = QueryFingerprint(obfuscated);
  switch (mode) {
    case QueryTextMode::kObfuscated:
      q.text = CapQueryLength(obfuscated, max_len, &q.truncated);
      break;
    case QueryTextMode::kRaw:
      q.text = CapQueryLength(SanitizeUtf8(raw), max_len, &q.truncated);
      break;
    case QueryTextMode::kNone:
      break;
  }
  return q;
}

const char* QueryTextModeName(QueryTextMode mode) {
  switch (mode) {
    case QueryTextMode::kObfuscated:
      return "obfuscated";
    case QueryTextMode::kNone:
      return "none";
    case QueryTextMode::kRaw:
      return "raw";
  }
  return "obfuscated";
}

}  // namespace pgvigil

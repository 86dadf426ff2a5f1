#include <cctype>

#include "config/database_url.hpp"

// ConnParams: the parsed URL's libpq keywords, and the forms of it that are safe to show.
namespace pgvigil {
namespace {

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string HostForUrl(const std::string& host) {
  if (host.find(':') != std::string::npos) return "[" + host + "]";  // IPv6 literal
  return PercentEncode(host);  // also covers socket directories ("/tmp" -> %2Ftmp)
}

bool IsSecretKeyword(std::string_view keyword) {
  return keyword == "password" || keyword == "sslpassword";
}

}  // namespace

std::string ConnParams::Get(std::string_view keyword) const {
  for (const auto& [k, v] : params) {
    if (k == keyword) return v;
  }
  return "";
}

void ConnParams::Set(std::string keyword, std::string value) {
  for (auto& [k, v] : params) {
    if (k == keyword) {
      v = std::move(value);
      return;
    }
  }
  params.emplace_back(std::move(keyword), std::move(value));
}

std::string ConnParams::Host() const {
  std::string hosts = Get("host");
  if (hosts.empty()) hosts = Get("hostaddr");
  return SplitCommas(hosts).front();
}

int ConnParams::Port() const {
  const std::string first = SplitCommas(Get("port")).front();
  if (first.empty() || first.size() > 5) return 5432;
  int port = 0;
  for (char c : first) {
    if (c < '0' || c > '9') return 5432;
    port = port * 10 + (c - '0');
  }
  return port > 0 && port <= 65535 ? port : 5432;
}

std::string ConnParams::Database() const {
  std::string db = Get("dbname");
  return db.empty() ? Get("user") : db;
}

std::string ConnParams::User() const { return Get("user"); }

std::string ConnParams::Redacted() const {
  std::string out = "postgresql://";
  if (const std::string user = Get("user"); !user.empty()) out += PercentEncode(user) + "@";
  const std::vector<std::string> hosts = SplitCommas(Get("host"));
  const std::vector<std::string> ports = SplitCommas(Get("port"));
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (i > 0) out += ',';
    out += HostForUrl(hosts[i]);
    const std::string& port = ports.size() == hosts.size() ? ports[i] : ports.front();
    if (!port.empty()) out += ":" + PercentEncode(port);
  }
  if (const std::string db = Get("dbname"); !db.empty()) out += "/" + PercentEncode(db);
  char sep = '?';
  for (const auto& [k, v] : params) {
    if (k == "user" || k == "host" || k == "port" || k == "dbname" || IsSecretKeyword(k)) continue;
    out += sep + PercentEncode(k) + "=" + PercentEncode(v);
    sep = '&';
  }
  return out;
}

std::vector<std::string> ConnParams::Secrets() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : params) {
    if (IsSecretKeyword(k) && !v.empty()) out.push_back(v);
  }
  return out;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace pgvigil

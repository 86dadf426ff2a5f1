#pragma once
// The config schema: every key the file accepts, in one table (schema.cpp, one line per key),
// and the walk over a parsed file that applies it. Internal to config/; thread-safe (the table
// is built once and then only read).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/toml_reader.hpp"

namespace pgvigil {

// Values that need the whole file (cross-field checks, the URL) wait here.
struct Pending {
  std::string source;
  EnvLookup env;
  std::map<std::string, std::string> where;  // "section.key" -> its message prefix
  std::optional<std::string> url;
  std::optional<std::string> url_env;
  bool application_name_set = false;

  std::string Where(const std::string& key) const;
};

struct Field {
  std::string_view section;
  std::string_view key;
  std::function<void(const Value&, Settings&, Pending&)> apply;
};

const std::vector<Field>& Schema();
std::vector<std::string> Sections();
std::vector<std::string> KeysOf(std::string_view section);

// Applies every key of `root` in file order (the first error reported is the first in the file);
// unknown sections and keys fail with a suggestion.
void ReadTable(const toml::table& root, std::string_view source, Settings& s, Pending& p);

}  // namespace pgvigil

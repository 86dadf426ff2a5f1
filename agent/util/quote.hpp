#pragma once
// Quote("x") -> "\"x\"": how error messages show a value the user wrote. Pure.
#include <string>
#include <string_view>

namespace pgvigil {

inline std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace pgvigil

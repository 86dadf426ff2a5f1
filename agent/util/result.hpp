#pragma once
// Result<T>: a value or a one-line error text (tl::expected from Debian's libexpected-dev), for
// running code that reports failures as values. `return Fail("why");` makes the error side.
#include <string>
#include <tl/expected.hpp>

namespace pgvigil {

template <typename T, typename E = std::string>
using Result = tl::expected<T, E>;

inline tl::unexpected<std::string> Fail(std::string message) {
  return tl::unexpected<std::string>(std::move(message));
}

}  // namespace pgvigil

#pragma once
// W3C Trace Context `traceparent` values read from other programs' SQL: the strict parser and
// the sqlcommenter comment reader that finds one in a query's comment. Used to link an observed
// query to its own trace. Pure functions, thread-safe.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pgvigil {

struct Traceparent {
  std::array<std::uint8_t, 16> trace_id{};
  std::array<std::uint8_t, 8> parent_id{};
  std::uint8_t flags = 0;  // bit 0: sampled
  bool sampled() const { return (flags & 0x01) != 0; }
  bool operator==(const Traceparent&) const = default;
};

// Parses "VV-<32 hex>-<16 hex>-FF" per W3C Trace Context level 1: lowercase hex only, version
// "ff" invalid, all-zero trace or parent ids invalid. Version 00 must be exactly 55 characters;
// a later version may append "-..." fields, which are ignored. nullopt for anything else.
std::optional<Traceparent> ParseTraceparent(std::string_view value);

// Reads one SQL block comment's body (the text between "/*" and "*/") as a sqlcommenter list,
// key='value' pairs separated by commas with URL-encoded keys and values, and returns its
// traceparent when the whole list is well formed and the value parses. A comment that is not
// a sqlcommenter list (prose, a half-formed pair, a duplicate traceparent) gives nullopt.
std::optional<Traceparent> SqlCommenterTraceparent(std::string_view comment_body);

}  // namespace pgvigil

#pragma once
// Memory that follows what pgvigil keeps, not its peaks. A large piece of work (the bundle's
// reply, a statement sample, a /metrics page at 200 databases) allocates megabytes of small
// blocks and frees them when done, but glibc keeps the freed pages in its arenas, so without
// this the process's RSS stays at the highest peak it ever had. TrimHeapAfter gives whole free
// pages back to the kernel (malloc_trim: every arena) when the work handled at least
// kTrimAfterBytes; small work costs nothing. Thread-safe (malloc_trim locks each arena in turn);
// costs well under a millisecond at pgvigil's heap sizes.
#include <cstddef>

namespace pgvigil {

inline constexpr std::size_t kTrimAfterBytes = 64 * 1024;

// `handled`: the size of the work just finished (bytes of a reply, of a page). Returns whether it
// trimmed.
bool TrimHeapAfter(std::size_t handled);

}  // namespace pgvigil

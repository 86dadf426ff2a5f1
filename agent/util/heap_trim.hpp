#pragma once
// Memory that follows what pgvigil keeps, not its peaks. A large piece of work (the bundle's
// reply, a statement sample, a /metrics page at 200 databases) allocates megabytes of small
// blocks and frees them when done, but glibc keeps the freed pages in its arenas, so without
// this the process's RSS stays at the highest peak it ever had. TrimHeap gives whole free pages
// back to the kernel (malloc_trim: every arena); TrimHeapAfter does so only when the work handled
// at least kTrimAfterBytes, so small work costs nothing. Thread-safe (malloc_trim locks each arena
// in turn); a few milliseconds at most after a 550 KB /metrics page (docs/benchmarks.md).
#include <cstddef>

namespace pgvigil {

inline constexpr std::size_t kTrimAfterBytes = 64 * 1024;

// Call after large work, once what it allocated is freed.
void TrimHeap();

// `handled`: the size in bytes of the work just finished (a reply, a page).
void TrimHeapAfter(std::size_t handled);

}  // namespace pgvigil

#include "util/heap_trim.hpp"

#include <malloc.h>

namespace pgvigil {

void TrimHeap() { malloc_trim(0); }

void TrimHeapAfter(std::size_t handled) {
  if (handled >= kTrimAfterBytes) TrimHeap();
}

}  // namespace pgvigil

#include "util/heap_trim.hpp"

#include <malloc.h>

namespace pgvigil {

bool TrimHeapAfter(std::size_t handled) {
  if (handled < kTrimAfterBytes) return false;
  malloc_trim(0);
  return true;
}

}  // namespace pgvigil

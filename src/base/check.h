// CHECK(cond): abort with file:line when one of our own invariants is false.
// For programming errors only; bad input and I/O failures are Status values.
#pragma once

#include <cstdio>
#include <cstdlib>

#define PETREL_CHECK(cond)                                                  \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

#define CHECK(cond) PETREL_CHECK(cond)

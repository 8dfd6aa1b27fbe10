// Dropping every capability the daemon does not need, in every thread of the process.
//
// Capability sets are per thread on Linux, and Node already runs several threads (V8 platform
// workers, maybe the libuv pool) by the time JavaScript can ask. capset() only changes the calling
// thread, so the change is broadcast the way glibc does setuid() and libcap's psx does cap_set_proc:
// a real-time signal is sent to each thread of /proc/self/task and its handler applies the same sets
// with raw system calls (async-signal-safe). Threads created afterwards inherit the reduced sets.
#pragma once

#include <cstdint>

#include "errors.h"

namespace credwatch {

struct CapabilityDropResult {
  int threads;        // threads that applied the drop (the caller included)
  int threadsMissed;  // threads that did not answer in time (exited meanwhile, or signal blocked)
};

// Keeps only the capabilities whose bits are set in `keepMask` (bit n = capability n) in the
// effective and permitted sets; clears inheritable and ambient, drops the others from the bounding
// set (needs CAP_SETPCAP, so that happens first) and sets no_new_privs. Throws SysError on failure.
CapabilityDropResult DropCapabilities(uint64_t keepMask);

}  // namespace credwatch

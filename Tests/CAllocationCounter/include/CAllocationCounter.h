#ifndef CALLOCATIONCOUNTER_H
#define CALLOCATIONCOUNTER_H

/// Counts the heap allocations made on the calling thread between start and stop, for tests that
/// prove a path allocates nothing (the test binary's malloc family forwards to glibc's and, while
/// counting is on for the thread, counts each call). Other threads are never counted.
void CAllocationCounter_start(void);
/// Stops counting on this thread; returns how many allocations it made since start.
long CAllocationCounter_stop(void);

#endif

#ifndef CNFLOG_SHIM_H
#define CNFLOG_SHIM_H
#include <stdint.h>
#include <sys/types.h>
#include <libnetfilter_log/libnetfilter_log.h>
#endif

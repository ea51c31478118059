#ifndef CNFLOG_SHIM_H
#define CNFLOG_SHIM_H
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <libnfnetlink/libnfnetlink.h>
#include <libnetfilter_log/libnetfilter_log.h>

/// NFULNL_COPY_PACKET as a typed constant (the macro is not imported with a fixed type).
static const uint8_t CNFLog_copyPacket = NFULNL_COPY_PACKET;

/// SO_RCVBUFFORCE: set the receive buffer beyond rmem_max (needs CAP_NET_ADMIN).
static const int CNFLog_soRcvbufForce = SO_RCVBUFFORCE;

/// NETLINK_ADD_MEMBERSHIP and SOL_NETLINK as typed constants (nf_tables change notifications).
static const int CNFLog_netlinkAddMembership = NETLINK_ADD_MEMBERSHIP;
static const int CNFLog_solNetlink = SOL_NETLINK;

#endif

#ifndef CNFLOG_SHIM_H
#define CNFLOG_SHIM_H
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <libnfnetlink/libnfnetlink.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <string.h>
#include <arpa/inet.h>

/// NFULNL_COPY_PACKET as a typed constant (the macro is not imported with a fixed type).
static const uint8_t CNFLog_copyPacket = NFULNL_COPY_PACKET;

/// SO_RCVBUFFORCE: set the receive buffer beyond rmem_max (needs CAP_NET_ADMIN).
static const int CNFLog_soRcvbufForce = SO_RCVBUFFORCE;

/// NETLINK_ADD_MEMBERSHIP and SOL_NETLINK as typed constants (nf_tables change notifications).
static const int CNFLog_netlinkAddMembership = NETLINK_ADD_MEMBERSHIP;
static const int CNFLog_solNetlink = SOL_NETLINK;

/// The most datagrams one ``CNFLog_receiveBatch`` reads.
#define CNFLOG_BATCH_MAX 64
static const unsigned CNFLog_batchMax = CNFLOG_BATCH_MAX;

/// struct mmsghdr (a GNU extension Swift's Glibc module does not show), laid out as the kernel's.
struct CNFLog_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// Reads up to `slots` (at most CNFLOG_BATCH_MAX) queued datagrams from `fd` in one `recvmmsg`
/// without waiting: datagram i goes to `buffer + i * slotBytes` and its length to `lengths[i]`
/// (a datagram longer than a slot is cut at the slot and flagged MSG_TRUNC in `flags[i]`).
/// Returns how many were read, or -1 with errno (EAGAIN when none was queued). No allocation:
/// the headers live on this stack frame.
static inline int CNFLog_receiveBatch(int fd, uint8_t *buffer, size_t slotBytes, unsigned slots,
                                      uint32_t *lengths, uint32_t *flags) {
    struct iovec vectors[CNFLOG_BATCH_MAX];
    struct CNFLog_mmsghdr headers[CNFLOG_BATCH_MAX];
    if (slots > CNFLOG_BATCH_MAX) slots = CNFLOG_BATCH_MAX;
    for (unsigned i = 0; i < slots; i++) {
        vectors[i].iov_base = buffer + (size_t)i * slotBytes;
        vectors[i].iov_len = slotBytes;
        headers[i].msg_hdr = (struct msghdr){ .msg_iov = &vectors[i], .msg_iovlen = 1 };
        headers[i].msg_len = 0;
    }
    long count = syscall(SYS_recvmmsg, fd, headers, slots, MSG_DONTWAIT, (void *)0);
    for (long i = 0; i < count; i++) {
        lengths[i] = headers[i].msg_len;
        flags[i] = (uint32_t)headers[i].msg_hdr.msg_flags;
    }
    return (int)count;
}

/// Sets how many packets the kernel gathers into one datagram for NFLOG `group` (the queue
/// threshold) and how long it may hold a partial batch (1/100 s), on the socket bound to the group;
/// a nonzero `bufferBytes` also sets the kernel's buffer for a batch (NFULA_CFG_NLBUFSIZ: a datagram
/// is sent when it is full; the kernel refuses values below its default, NLMSG_GOODSIZE, or above
/// 128 KiB, and keeps the size it had). The config message asks for no acknowledgement, so no answer interleaves with the
/// packets this socket reads (a refusal still comes back as an error message, which the reader
/// skips). Returns 0, or -1 with errno.
static inline int CNFLog_sendQueueThreshold(int fd, uint16_t group, uint32_t threshold, uint32_t flushTimeout,
                                            uint32_t bufferBytes) {
    struct {
        struct nlmsghdr header;
        struct nfgenmsg general;
        struct nlattr thresholdAttribute;
        uint32_t thresholdValue;
        struct nlattr timeoutAttribute;
        uint32_t timeoutValue;
        struct nlattr bufferAttribute;
        uint32_t bufferValue;
    } message;
    memset(&message, 0, sizeof message);
    message.header.nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
    message.header.nlmsg_flags = NLM_F_REQUEST;
    message.general.nfgen_family = AF_UNSPEC;
    message.general.version = NFNETLINK_V0;
    message.general.res_id = htons(group);
    message.thresholdAttribute.nla_len = sizeof(struct nlattr) + sizeof(uint32_t);
    message.thresholdAttribute.nla_type = NFULA_CFG_QTHRESH;
    message.thresholdValue = htonl(threshold);
    message.timeoutAttribute.nla_len = sizeof(struct nlattr) + sizeof(uint32_t);
    message.timeoutAttribute.nla_type = NFULA_CFG_TIMEOUT;
    message.timeoutValue = htonl(flushTimeout);
    size_t length = sizeof message;
    if (bufferBytes != 0) {
        message.bufferAttribute.nla_len = sizeof(struct nlattr) + sizeof(uint32_t);
        message.bufferAttribute.nla_type = NFULA_CFG_NLBUFSIZ;
        message.bufferValue = htonl(bufferBytes);
    } else {
        length -= sizeof(struct nlattr) + sizeof(uint32_t);
    }
    message.header.nlmsg_len = (uint32_t)length;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    ssize_t sent = sendto(fd, &message, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
    return sent == (ssize_t)length ? 0 : -1;
}

#endif

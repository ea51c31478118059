/* pk-flood: a bounded flood of spoofed IPv6 knocks for Scripts/bench/run.sh (benchmark only).
 *
 *   pk-flood IFACE DST_MAC SRC_MAC DST_IP6 PORT COUNT PPS SECONDS [tcp|udp] [FIRST_INDEX]
 *
 * Sends COUNT TCP SYNs (or empty UDP datagrams) to DST_IP6 PORT through an AF_PACKET socket on
 * IFACE, each from a distinct source in 2001:db8:ff00::/40 (documentation range): source i is
 * 2001:db8:ff00:0:0:0:hi(i):lo(i) with i = FIRST_INDEX + n. PPS 0 sends as fast as the socket takes
 * them; it stops after SECONDS in any case. Prints "sent=N seconds=S pps=R". Checksums are correct,
 * so the packets look like genuine first knocks. Needs CAP_NET_RAW; run it in a namespace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME 128

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int parse_mac(const char *text, uint8_t mac[6]) {
    return sscanf(text, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) == 6 ? 0 : -1;
}

static uint16_t checksum(const uint8_t *src, const uint8_t *dst, uint8_t proto, const uint8_t *l4, size_t len) {
    uint32_t sum = 0;
    for (int i = 0; i < 16; i += 2) sum += (src[i] << 8 | src[i + 1]) + (dst[i] << 8 | dst[i + 1]);
    sum += (uint32_t)len + proto;
    for (size_t i = 0; i + 1 < len; i += 2) sum += l4[i] << 8 | l4[i + 1];
    if (len & 1) sum += l4[len - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s IFACE DST_MAC SRC_MAC DST_IP6 PORT COUNT PPS SECONDS [tcp|udp] [FIRST_INDEX]\n", argv[0]);
        return 64;
    }
    uint8_t dmac[6], smac[6], dst[16];
    if (parse_mac(argv[2], dmac) || parse_mac(argv[3], smac) || inet_pton(AF_INET6, argv[4], dst) != 1) {
        fprintf(stderr, "pk-flood: bad MAC or IPv6 address\n");
        return 64;
    }
    unsigned port = (unsigned)atoi(argv[5]);
    unsigned long long count = strtoull(argv[6], NULL, 10);
    double pps = atof(argv[7]), limit = atof(argv[8]);
    int udp = argc > 9 && strcmp(argv[9], "udp") == 0;
    unsigned long long first = argc > 10 ? strtoull(argv[10], NULL, 10) : 0;

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IPV6));
    if (fd < 0) { perror("socket(AF_PACKET)"); return 1; }
    int bypass = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &bypass, sizeof bypass);
    struct sockaddr_ll link = {0};
    link.sll_family = AF_PACKET;
    link.sll_protocol = htons(ETH_P_IPV6);
    link.sll_ifindex = (int)if_nametoindex(argv[1]);
    link.sll_halen = 6;
    memcpy(link.sll_addr, dmac, 6);
    if (link.sll_ifindex == 0) { perror("if_nametoindex"); return 1; }

    static uint8_t frames[BATCH][FRAME];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    size_t l4len = udp ? 8 : 20, len = 14 + 40 + l4len;
    for (int b = 0; b < BATCH; b++) {
        uint8_t *f = frames[b];
        memcpy(f, dmac, 6);
        memcpy(f + 6, smac, 6);
        f[12] = 0x86; f[13] = 0xdd;
        uint8_t *ip = f + 14;
        ip[0] = 0x60;
        ip[4] = 0; ip[5] = (uint8_t)l4len;
        ip[6] = udp ? 17 : 6;
        ip[7] = 64;
        uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff};
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
        uint8_t *l4 = ip + 40;
        l4[2] = port >> 8; l4[3] = port & 0xff;
        if (udp) {
            l4[5] = 8;
        } else {
            l4[12] = 5 << 4;   /* data offset */
            l4[13] = 0x02;     /* SYN */
            l4[14] = 0xff; l4[15] = 0xff;
        }
        iov[b].iov_base = f;
        iov[b].iov_len = len;
        memset(&msgs[b], 0, sizeof msgs[b]);
        msgs[b].msg_hdr.msg_iov = &iov[b];
        msgs[b].msg_hdr.msg_iovlen = 1;
        msgs[b].msg_hdr.msg_name = &link;
        msgs[b].msg_hdr.msg_namelen = sizeof link;
    }

    double start = now_seconds(), deadline = start + limit;
    unsigned long long sent = 0;
    while (sent < count) {
        double t = now_seconds();
        if (t >= deadline) break;
        if (pps > 0) {
            double due = start + sent / pps;
            if (t < due) {
                struct timespec pause = {0, (long)((due - t) * 1e9)};
                if (pause.tv_nsec > 1000) nanosleep(&pause, NULL);
                continue;
            }
        }
        unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
        for (unsigned b = 0; b < n; b++) {
            unsigned long long i = first + sent + b;
            uint8_t *ip = frames[b] + 14, *l4 = ip + 40;
            for (int k = 0; k < 8; k++) ip[8 + 8 + k] = (uint8_t)(i >> (56 - 8 * k));
            uint16_t sport = (uint16_t)(1024 + (i % 60000));
            l4[0] = sport >> 8; l4[1] = sport & 0xff;
            l4[udp ? 6 : 16] = 0; l4[udp ? 7 : 17] = 0;
            uint16_t sum = checksum(ip + 8, ip + 24, udp ? 17 : 6, l4, l4len);
            l4[udp ? 6 : 16] = sum >> 8; l4[udp ? 7 : 17] = sum & 0xff;
        }
        int done = sendmmsg(fd, msgs, n, 0);
        if (done < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) continue;
            perror("sendmmsg");
            break;
        }
        sent += (unsigned)done;
    }
    double seconds = now_seconds() - start;
    printf("sent=%llu seconds=%.3f pps=%.0f\n", sent, seconds, seconds > 0 ? sent / seconds : 0);
    close(fd);
    return 0;
}

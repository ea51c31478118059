// Netfilter

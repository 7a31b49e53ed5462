//! Export of a log to pcapng and classic pcap.

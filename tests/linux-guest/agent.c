/* SPDX-License-Identifier: MIT */
/*
 * The Linux guest suite's /init (static; also /sbin/poweroff).
 *
 * It reports what Linux's unchanged Hyper-V drivers found, then runs
 * commands the host's suite (suite.py) types on the console, one per
 * line, each answered by lines that start with "hvt: " and end with
 * "hvt: end CMD ok|fail DETAIL". It also stands in for the user-space
 * daemons of hv_utils (hv_kvp_daemon, hv_vss_daemon, hv_fcopy_daemon),
 * speaking their kernel interface (include/uapi/linux/hyperv.h) so the
 * host's KVP, VSS and file-copy services are checked end to end; the
 * kernel drivers are Debian's, unchanged.
 *
 * Every check here has a bounded wait. Data patterns and hashes are the
 * suite's (pattern_block, crc32), so the host can check what it reads.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/hyperv.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 512
#define FRAME_ETHERTYPE 0x88b5 /* IEEE "local experimental" */

/* ---- output ---- */

/* One line to the console in one write, so lines from the daemons and
 * from the kernel do not cut into each other. */
static void say(const char *fmt, ...)
{
	char line[2048] = "hvt: ";
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line + 5, sizeof(line) - 6, fmt, ap);
	va_end(ap);
	size_t len = 5 + (n < 0 ? 0 : (size_t)n);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	for (size_t off = 0; off < len;) {
		ssize_t w = write(1, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* ---- the suite's data: pattern and hash (suite.py has the twins) ---- */

static uint64_t splitmix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Bytes [off, off + len) of the pattern stream `seed`: 8-byte
 * little-endian blocks, block i = splitmix64(seed << 32 ^ i). */
static void pattern_fill(uint8_t *p, uint64_t off, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t at = off + i;
		uint64_t block = splitmix64((uint64_t)seed << 32 ^ (at / 8));
		p[i] = (uint8_t)(block >> (8 * (at % 8)));
	}
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t len)
{
	static uint32_t table[256];
	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- small helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* The first line of a file, without its newline; "" if unreadable. */
static const char *read_line(const char *path, char *buf, size_t size)
{
	buf[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return buf;
	if (!fgets(buf, (int)size, f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* The last component of the symlink at path; "-" if none. */
static const char *link_name(const char *path, char *buf, size_t size)
{
	ssize_t n = readlink(path, buf, size - 1);
	if (n <= 0)
		return strcpy(buf, "-");
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	return slash ? slash + 1 : buf;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s ? s : "", &end, 0);
	if (!s || !*s || *end || errno)
		return false;
	*out = v;
	return true;
}

/* ---- the inventory ---- */

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The first line of sysfs attribute dir/name/attr, and the last component
 * of the link there; both "" or "-" when absent. */
static const char *attr_line(const char *dir, const char *name, const char *attr, char *buf,
			     size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr);
	return read_line(path, buf, size);
}

static const char *attr_link(const char *dir, const char *name, const char *attr, char *buf,
			     size_t size)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s/%s", dir, name, attr);
	return link_name(path, buf, size);
}

static void report_vmbus(void)
{
	static const char dir[] = "/sys/bus/vmbus/devices";
	DIR *d = opendir(dir);
	if (!d) {
		say("vmbus none");
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char cls[64], inst[64], relid[16], drv[128], channels[512];
		snprintf(channels, sizeof(channels), "%s/%s/channels", dir, e->d_name);
		say("vmbus class=%s instance=%s relid=%s driver=%s channels=%d",
		    attr_line(dir, e->d_name, "class_id", cls, sizeof(cls)),
		    attr_line(dir, e->d_name, "device_id", inst, sizeof(inst)),
		    attr_line(dir, e->d_name, "id", relid, sizeof(relid)),
		    attr_link(dir, e->d_name, "driver", drv, sizeof(drv)), count_entries(channels));
	}
	closedir(d);
}

/* VPD page 0x80 (4-byte header, then the serial) into serial, up to its
 * first blank; "" if the disk has none. */
static void disk_serial(const char *dir, const char *name, char *serial, size_t size)
{
	char path[512];
	uint8_t pg[64];
	snprintf(path, sizeof(path), "%s/%s/device/vpd_pg80", dir, name);
	serial[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, pg, sizeof(pg));
	close(fd);
	if (n <= 4)
		return;
	size_t len = (size_t)n - 4 < size - 1 ? (size_t)n - 4 : size - 1;
	memcpy(serial, pg + 4, len);
	serial[len] = '\0';
	serial[strcspn(serial, " ")] = '\0';
}

static void report_disks(void)
{
	static const char dir[] = "/sys/block";
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, "sd", 2))
			continue;
		char sectors[32], ro[8], addr[64], model[64], serial[64];
		attr_line(dir, e->d_name, "device/model", model, sizeof(model));
		model[strcspn(model, " ")] = '\0';
		disk_serial(dir, e->d_name, serial, sizeof(serial));
		say("disk name=%s sectors=%s ro=%s scsi=%s model=%s serial=%s", e->d_name,
		    attr_line(dir, e->d_name, "size", sectors, sizeof(sectors)),
		    attr_line(dir, e->d_name, "ro", ro, sizeof(ro)),
		    attr_link(dir, e->d_name, "device", addr, sizeof(addr)), model,
		    serial[0] ? serial : "-");
	}
	closedir(d);
}

static int ipv4_of(const char *ifname, char *out, size_t size)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.*s", IFNAMSIZ - 1, ifname);
	int err = s < 0 || ioctl(s, SIOCGIFADDR, &ifr) ? -1 : 0;
	if (s >= 0)
		close(s);
	snprintf(out, size, "-");
	if (!err)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, out,
			  (socklen_t)size);
	return err;
}

static void report_nics(void)
{
	static const char dir[] = "/sys/class/net";
	DIR *d = opendir(dir);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "lo"))
			continue;
		char mac[32], mtu[16], drv[128], dev[128], ip[32];
		ipv4_of(e->d_name, ip, sizeof(ip));
		say("nic name=%s mac=%s mtu=%s driver=%s device=%s ipv4=%s", e->d_name,
		    attr_line(dir, e->d_name, "address", mac, sizeof(mac)),
		    attr_line(dir, e->d_name, "mtu", mtu, sizeof(mtu)),
		    attr_link(dir, e->d_name, "device/driver", drv, sizeof(drv)),
		    attr_link(dir, e->d_name, "device", dev, sizeof(dev)), ip);
	}
	closedir(d);
}

static void report(void)
{
	struct utsname u;
	uname(&u);
	say("kernel release=%s cpus=%ld", u.release, sysconf(_SC_NPROCESSORS_ONLN));
	report_vmbus();
	report_disks();
	report_nics();
}

/* ---- disks ---- */

/* Writes len bytes of pattern `seed` at offset off of dev (from the given
 * CPU, so that CPU's storvsc channel carries it), flushes, reads them back
 * around the page cache and compares. The old contents are not restored:
 * the host checks the image afterwards. */
static bool disk_test(char **argv, char *why, size_t why_len)
{
	uint64_t off, len, seed, cpu;
	if (!argv[1] || !parse_u64(argv[2], &off) || !parse_u64(argv[3], &len) ||
	    !parse_u64(argv[4], &seed) || !parse_u64(argv[5], &cpu) || off % 4096 ||
	    len % 4096 || !len || len > (16u << 20)) {
		snprintf(why, why_len, "usage: disk-test DEV OFFSET LEN SEED CPU (4 KiB units)");
		return false;
	}
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET((int)cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		snprintf(why, why_len, "cpu %llu: %s", (unsigned long long)cpu, strerror(errno));
		return false;
	}
	uint8_t *want = NULL, *got = NULL;
	bool ok = false;
	int fd = open(argv[1], O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign((void **)&want, 4096, len) ||
	    posix_memalign((void **)&got, 4096, len)) {
		snprintf(why, why_len, "open %s: %s", argv[1], strerror(errno));
		goto out;
	}
	pattern_fill(want, off, len, (uint32_t)seed);
	memset(got, 0, len);
	if (pwrite(fd, want, len, (off_t)off) != (ssize_t)len || fdatasync(fd) ||
	    pread(fd, got, len, (off_t)off) != (ssize_t)len) {
		snprintf(why, why_len, "I/O: %s", strerror(errno));
		goto out;
	}
	ok = !memcmp(want, got, len);
	snprintf(why, why_len, "%s %llu bytes at %llu on cpu %llu crc32=%08x", ok ? "verified" :
		 "read back different data", (unsigned long long)len, (unsigned long long)off,
		 (unsigned long long)cpu, crc32_update(0, got, len));
out:
	if (fd >= 0)
		close(fd);
	free(want);
	free(got);
	CPU_ZERO(&set); /* back to every CPU */
	for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); c++)
		CPU_SET((int)c, &set);
	sched_setaffinity(0, sizeof(set), &set);
	return ok;
}

/* CRC-32 of len bytes at off of a file or device, read around the page
 * cache where it can be. */
static bool file_crc(char **argv, char *why, size_t why_len)
{
	uint64_t off = 0, len = UINT64_MAX;
	if (!argv[1] || (argv[2] && (!parse_u64(argv[2], &off) || !parse_u64(argv[3], &len)))) {
		snprintf(why, why_len, "usage: crc PATH [OFFSET LEN]");
		return false;
	}
	int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "open %s: %s", argv[1], strerror(errno));
		return false;
	}
	static uint8_t buf[1 << 16];
	uint32_t crc = 0;
	uint64_t done = 0;
	while (done < len) {
		size_t want = len - done < sizeof(buf) ? (size_t)(len - done) : sizeof(buf);
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		crc = crc32_update(crc, buf, (size_t)n);
		done += (uint64_t)n;
	}
	close(fd);
	snprintf(why, why_len, "bytes=%llu crc32=%08x", (unsigned long long)done, crc);
	return len == UINT64_MAX || done == len;
}

/* A write to a read-only disk must be refused. */
static bool disk_refuses_write(char **argv, char *why, size_t why_len)
{
	if (!argv[1]) {
		snprintf(why, why_len, "usage: disk-refuses-write DEV");
		return false;
	}
	int fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "open for writing refused: %s", strerror(errno));
		return errno == EROFS || errno == EACCES || errno == EPERM;
	}
	static uint8_t block[4096] __attribute__((aligned(4096)));
	ssize_t n = pwrite(fd, block, sizeof(block), 0);
	int err = n < 0 ? errno : 0;
	if (n == (ssize_t)sizeof(block)) {
		n = fsync(fd);
		err = n ? errno : 0;
	}
	close(fd);
	snprintf(why, why_len, "write %s%s", err ? "refused: " : "accepted", err ? strerror(err) : "");
	return err != 0;
}

/* ---- network ---- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends `bytes` of pattern `seed` to IP:PORT, half-closes, then takes the
 * host's answer (`bytes` of pattern seed + 1, then EOF) and checks every
 * byte. A 120 s receive timeout bounds it. */
static bool tcp_exchange(char **argv, char *why, size_t why_len)
{
	uint64_t port, bytes, seed;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	if (!argv[1] || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 ||
	    !parse_u64(argv[2], &port) || !parse_u64(argv[3], &bytes) ||
	    !parse_u64(argv[4], &seed) || port > 65535) {
		snprintf(why, why_len, "usage: tcp IP PORT BYTES SEED");
		return false;
	}
	sa.sin_port = htons((uint16_t)port);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 120};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(why, why_len, "connect: %s", strerror(errno));
		if (s >= 0)
			close(s);
		return false;
	}
	static uint8_t buf[1 << 16], want[1 << 16];
	uint64_t sent = 0, got = 0, bad_at = UINT64_MAX;
	while (sent < bytes) {
		size_t n = bytes - sent < sizeof(buf) ? (size_t)(bytes - sent) : sizeof(buf);
		pattern_fill(buf, sent, n, (uint32_t)seed);
		if (write_all(s, buf, n))
			break;
		sent += n;
	}
	shutdown(s, SHUT_WR);
	for (;;) {
		ssize_t n = read(s, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pattern_fill(want, got, (size_t)n, (uint32_t)seed + 1);
		if (bad_at == UINT64_MAX && memcmp(buf, want, (size_t)n))
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != want[i]) {
					bad_at = got + (uint64_t)i;
					break;
				}
		got += (uint64_t)n;
	}
	int err = errno;
	close(s);
	bool ok = sent == bytes && got == bytes && bad_at == UINT64_MAX;
	if (bad_at != UINT64_MAX)
		snprintf(why, why_len, "sent=%llu received=%llu first bad byte at %llu",
			 (unsigned long long)sent, (unsigned long long)got,
			 (unsigned long long)bad_at);
	else
		snprintf(why, why_len, "sent=%llu received=%llu%s%s", (unsigned long long)sent,
			 (unsigned long long)got, ok ? " verified" : " short: ",
			 ok ? "" : strerror(err));
	return ok;
}

static int if_up(int s, const char *ifname)
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.*s", IFNAMSIZ - 1, ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		return -1;
	ifr.ifr_flags |= IFF_UP;
	return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* Frame i: to and from the NIC's own MAC, ethertype FRAME_ETHERTYPE,
 * sequence number, then pattern; 60 to 1514 bytes. */
static size_t frame_build(uint8_t *f, const uint8_t mac[6], uint32_t i)
{
	size_t len = 60 + (i * 397u) % (1514 - 60 + 1);
	memcpy(f, mac, 6);
	memcpy(f + 6, mac, 6);
	f[12] = FRAME_ETHERTYPE >> 8;
	f[13] = FRAME_ETHERTYPE & 0xff;
	memcpy(f + 14, &i, 4);
	pattern_fill(f + 18, 0, len - 18, 1000 + i);
	return len;
}

/* Sends COUNT frames on IFACE (a NIC whose backend hands them back) and
 * checks that each comes back once, whole. */
static bool frames(char **argv, char *why, size_t why_len)
{
	uint64_t count;
	if (!argv[1] || !parse_u64(argv[2], &count) || count > 1000) {
		snprintf(why, why_len, "usage: frames IFACE COUNT");
		return false;
	}
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(FRAME_ETHERTYPE));
	struct ifreq hw = {0}, index = {0};
	snprintf(hw.ifr_name, sizeof(hw.ifr_name), "%.*s", IFNAMSIZ - 1, argv[1]);
	snprintf(index.ifr_name, sizeof(index.ifr_name), "%.*s", IFNAMSIZ - 1, argv[1]);
	if (s < 0 || if_up(s, argv[1]) || ioctl(s, SIOCGIFHWADDR, &hw) ||
	    ioctl(s, SIOCGIFINDEX, &index)) {
		snprintf(why, why_len, "%s: %s", argv[1], strerror(errno));
		if (s >= 0)
			close(s);
		return false;
	}
	uint8_t mac[6];
	memcpy(mac, hw.ifr_hwaddr.sa_data, 6);
	struct sockaddr_ll ll = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(FRAME_ETHERTYPE),
				 .sll_ifindex = index.ifr_ifindex};
	if (bind(s, (struct sockaddr *)&ll, sizeof(ll))) {
		snprintf(why, why_len, "bind %s: %s", argv[1], strerror(errno));
		close(s);
		return false;
	}
	static uint8_t seen[1000];
	memset(seen, 0, sizeof(seen));
	uint8_t f[1514], want[1514];
	uint32_t sent = 0, back = 0, bad = 0, dup = 0;
	for (uint32_t i = 0; i < count; i++) {
		size_t len = frame_build(f, mac, i);
		sent += send(s, f, len, 0) == (ssize_t)len;
	}
	uint64_t deadline = now_ms() + 20000;
	while (back < sent && now_ms() < deadline) {
		struct pollfd p = {s, POLLIN, 0};
		if (poll(&p, 1, 200) <= 0)
			continue;
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s, f, sizeof(f), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 18 || from.sll_pkttype == PACKET_OUTGOING)
			continue; /* our own frames, as packet sockets see them go */
		uint32_t i;
		memcpy(&i, f + 14, 4);
		if (i >= count || (size_t)n != frame_build(want, mac, i) || memcmp(f, want, (size_t)n)) {
			bad++;
			continue;
		}
		dup += seen[i];
		back += !seen[i];
		seen[i] = 1;
	}
	close(s);
	snprintf(why, why_len, "sent=%u back=%u bad=%u duplicates=%u", sent, back, bad, dup);
	return sent == count && back == count && !bad && !dup;
}

/* ---- clock ---- */

static bool clock_cmd(char **argv, char *why, size_t why_len)
{
	struct timespec t;
	uint64_t v = 0, wait_s = 0;
	if (argv[1] && !strcmp(argv[1], "set") && parse_u64(argv[2], &v)) {
		t = (struct timespec){.tv_sec = (time_t)v};
		if (clock_settime(CLOCK_REALTIME, &t)) {
			snprintf(why, why_len, "clock_settime: %s", strerror(errno));
			return false;
		}
	} else if (argv[1] && !strcmp(argv[1], "wait-past") && parse_u64(argv[2], &v) &&
		   parse_u64(argv[3], &wait_s)) {
		/* Until the clock passes v (someone set it), at most wait_s. */
		uint64_t deadline = now_ms() + wait_s * 1000;
		while (clock_gettime(CLOCK_REALTIME, &t) == 0 && (uint64_t)t.tv_sec < v &&
		       now_ms() < deadline)
			usleep(50000);
	} else if (argv[1]) {
		snprintf(why, why_len, "usage: clock [set EPOCH | wait-past EPOCH SECONDS]");
		return false;
	}
	clock_gettime(CLOCK_REALTIME, &t);
	snprintf(why, why_len, "realtime=%lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
	return !argv[1] || strcmp(argv[1], "wait-past") || (uint64_t)t.tv_sec >= v;
}

/* ---- waiting for the machine to change ---- */

/* Until PATH exists (present) or not (absent), at most SECONDS: what a
 * hot-plugged disk or NIC, or one taken away, does to sysfs. */
static bool wait_path(char **argv, char *why, size_t why_len)
{
	uint64_t seconds;
	bool want;
	if (!argv[1] || !argv[2] || !parse_u64(argv[3], &seconds) ||
	    (strcmp(argv[2], "present") && strcmp(argv[2], "absent"))) {
		snprintf(why, why_len, "usage: wait PATH present|absent SECONDS");
		return false;
	}
	want = !strcmp(argv[2], "present");
	uint64_t start = now_ms(), deadline = start + seconds * 1000;
	bool there;
	while ((there = access(argv[1], F_OK) == 0) != want && now_ms() < deadline)
		usleep(50000);
	snprintf(why, why_len, "%s %s after %llu ms", argv[1], there ? "present" : "absent",
		 (unsigned long long)(now_ms() - start));
	return there == want;
}

/* The first line of a (sysfs) file. */
static bool cat(char **argv, char *why, size_t why_len)
{
	char line[256];
	if (!argv[1] || access(argv[1], R_OK)) {
		snprintf(why, why_len, "%s: %s", argv[1] ? argv[1] : "usage: cat PATH",
			 argv[1] ? strerror(errno) : "");
		return false;
	}
	snprintf(why, why_len, "%s", read_line(argv[1], line, sizeof(line)));
	return true;
}

/* ---- hibernation (hibernation.rst) ---- */

/* mkswap's job: a version 1 swap header on DEV (include/linux/swap.h
 * union swap_header), then swapon: where the hibernation image goes. */
static bool swap_cmd(char **argv, char *why, size_t why_len)
{
	if (!argv[1]) {
		snprintf(why, why_len, "usage: swap DEV");
		return false;
	}
	int fd = open(argv[1], O_RDWR | O_CLOEXEC);
	uint64_t bytes = 0;
	if (fd < 0 || ioctl(fd, _IOR(0x12, 114, size_t), &bytes)) { /* BLKGETSIZE64 */
		snprintf(why, why_len, "%s: %s", argv[1], strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	static uint8_t page[4096];
	memset(page, 0, sizeof(page));
	uint32_t header[3] = {1, (uint32_t)(bytes / 4096 - 1), 0}; /* version, last page, bad */
	memcpy(page + 1024, header, sizeof(header));
	memcpy(page + 4096 - 10, "SWAPSPACE2", 10);
	bool ok = pwrite(fd, page, sizeof(page), 0) == (ssize_t)sizeof(page) && fsync(fd) == 0;
	close(fd);
	if (!ok || swapon(argv[1], 0)) {
		snprintf(why, why_len, "swap on %s: %s", argv[1], strerror(errno));
		return false;
	}
	snprintf(why, why_len, "%llu MiB", (unsigned long long)(bytes >> 20));
	return true;
}

/* Writes text to a /sys/power file: 0 or errno. */
static int power_write(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = write(fd, text, strlen(text)) < 0 ? errno : 0;
	close(fd);
	return err;
}

/* "disk" to /sys/power/state: the image goes to swap and the machine
 * enters S4; the write returns in the resumed kernel (or at once on a
 * failure), which is what this reports. */
static bool hibernate_cmd(char **argv, char *why, size_t why_len)
{
	(void)argv;
	sync();
	int err = power_write("/sys/power/state", "disk");
	snprintf(why, why_len, "%s", err ? strerror(err) : "resumed");
	return !err;
}

/* The early resume of an initramfs: DEV's major:minor to
 * /sys/power/resume. With an image there the kernel restores it and this
 * never returns; without one it fails. */
static bool resume_cmd(char **argv, char *why, size_t why_len)
{
	struct stat st;
	if (!argv[1] || stat(argv[1], &st)) {
		snprintf(why, why_len, "usage: resume DEV (%s)", argv[1] ? strerror(errno) : "");
		return false;
	}
	char text[32];
	snprintf(text, sizeof(text), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	int err = power_write("/sys/power/resume", text);
	snprintf(why, why_len, "no image restored from %s (%s)", text,
		 err ? strerror(err) : "none there");
	return false;
}

/* ---- hv_utils daemons ---- */

/*
 * One daemon: it registers on its device, takes the driver's answer to
 * that, then serves one request per read and writes the answer back.
 * serve fills *answer and *len (the request buffer itself or a status).
 * registered checks the driver's answer to the registration: NULL for the
 * VSS and file-copy drivers' (their version, a u32).
 */
struct daemon {
	const char *name, *dev;
	const void *reg;
	size_t reg_len;
	void *msg;
	size_t msg_len;
	bool (*registered)(const void *msg, ssize_t n);
	void (*serve)(void *msg, ssize_t n, const void **answer, size_t *len);
};

static bool version_registered(const struct daemon *d, ssize_t n)
{
	if (n != (ssize_t)sizeof(__u32))
		return false;
	say("daemon %s: registered (driver version %u)", d->name, *(const __u32 *)d->msg);
	return true;
}

static __attribute__((noreturn)) void daemon_run(const struct daemon *d)
{
	int fd = open(d->dev, O_RDWR | O_CLOEXEC);
	if (fd < 0 || write(fd, d->reg, d->reg_len) != (ssize_t)d->reg_len) {
		say("daemon %s: %s %s: %s", d->name, fd < 0 ? "open" : "register", d->dev,
		    strerror(errno));
		_exit(1);
	}
	bool registered = false;
	for (;;) {
		ssize_t n = read(fd, d->msg, d->msg_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			say("daemon %s: read %zd: %s", d->name, n, strerror(errno));
			_exit(1);
		}
		if (!registered) {
			registered = d->registered ? d->registered(d->msg, n)
						   : version_registered(d, n);
			if (!registered)
				say("daemon %s: unexpected registration answer (%zd bytes)", d->name,
				    n);
			continue;
		}
		const void *answer;
		size_t len;
		d->serve(d->msg, n, &answer, &len);
		if (write(fd, answer, len) != (ssize_t)len)
			say("daemon %s: answer: %s", d->name, strerror(errno));
	}
}

/* Bounded copy of a string the kernel sent in a fixed field. */
static void field_str(char *out, size_t size, const __u8 *in, size_t in_size)
{
	size_t n = strnlen((const char *)in, in_size < size - 1 ? in_size : size - 1);
	memcpy(out, in, n);
	out[n] = '\0';
}

/* KVP: the pools in memory; pool 2 (auto) made up of facts, as
 * hv_kvp_daemon does. */
#define KVP_ITEMS 64
struct kvp_item {
	char key[HV_KVP_EXCHANGE_MAX_KEY_SIZE];
	char value[HV_KVP_EXCHANGE_MAX_VALUE_SIZE];
};
static struct kvp_item kvp_pool[KVP_POOL_COUNT][KVP_ITEMS];
static int kvp_count[KVP_POOL_COUNT];

static int kvp_find(int pool, const char *key)
{
	for (int i = 0; i < kvp_count[pool]; i++)
		if (!strcmp(kvp_pool[pool][i].key, key))
			return i;
	return -1;
}

/* Item `index` of the auto pool into d; HV_S_CONT past the last. */
static int kvp_auto(uint32_t index, struct hv_kvp_exchg_msg_value *d)
{
	struct utsname u;
	uname(&u);
	const char *facts[][2] = {
		{"FullyQualifiedDomainName", u.nodename},
		{"IntegrationServicesVersion", "hvkit-suite"},
		{"OSName", "Linux"},
		{"OSVersion", u.release},
		{"ProcessorArchitecture", u.machine},
	};
	if (index >= sizeof(facts) / sizeof(facts[0]))
		return (int)HV_S_CONT;
	snprintf((char *)d->key, sizeof(d->key), "%s", facts[index][0]);
	snprintf((char *)d->value, sizeof(d->value), "%s", facts[index][1]);
	return HV_S_OK;
}

static void kvp_serve(struct hv_kvp_msg *m)
{
	int op = m->kvp_hdr.operation, pool = m->kvp_hdr.pool;
	char key[HV_KVP_EXCHANGE_MAX_KEY_SIZE];
	m->error = HV_S_OK;
	if (pool >= KVP_POOL_COUNT) {
		m->error = (int)HV_E_FAIL;
		return;
	}
	struct hv_kvp_exchg_msg_value *d = &m->body.kvp_set.data;
	switch (op) {
	case KVP_OP_SET: {
		field_str(key, sizeof(key), d->key, sizeof(d->key));
		int i = kvp_find(pool, key);
		if (i < 0 && kvp_count[pool] == KVP_ITEMS) {
			m->error = (int)HV_S_CONT;
			break;
		}
		if (i < 0)
			i = kvp_count[pool]++;
		snprintf(kvp_pool[pool][i].key, sizeof(kvp_pool[pool][i].key), "%s", key);
		field_str(kvp_pool[pool][i].value, sizeof(kvp_pool[pool][i].value), d->value,
			  sizeof(d->value));
		say("kvp set pool=%d key=%s value=%s", pool, key, kvp_pool[pool][i].value);
		break;
	}
	case KVP_OP_GET: {
		field_str(key, sizeof(key), d->key, sizeof(d->key));
		int i = kvp_find(pool, key);
		/* As hv_kvp_daemon: value_size bytes of the value (the driver
		 * leaves value_size 0, and reads the answer elsewhere: the host
		 * gets "found" and an empty value; hvkit ctl enumerates). */
		if (i < 0)
			m->error = (int)HV_S_CONT;
		else
			memcpy(d->value, kvp_pool[pool][i].value,
			       d->value_size < sizeof(d->value) ? d->value_size : sizeof(d->value));
		say("kvp get pool=%d key=%s %s", pool, key, i < 0 ? "missing" : "found");
		break;
	}
	case KVP_OP_DELETE: {
		field_str(key, sizeof(key), m->body.kvp_delete.key, sizeof(m->body.kvp_delete.key));
		int i = kvp_find(pool, key);
		if (i < 0) {
			m->error = (int)HV_S_CONT;
		} else {
			kvp_pool[pool][i] = kvp_pool[pool][--kvp_count[pool]];
		}
		say("kvp delete pool=%d key=%s %s", pool, key, i < 0 ? "missing" : "done");
		break;
	}
	case KVP_OP_ENUMERATE: {
		uint32_t index = m->body.kvp_enum_data.index;
		struct hv_kvp_exchg_msg_value *e = &m->body.kvp_enum_data.data;
		if (pool == KVP_POOL_AUTO)
			m->error = kvp_auto(index, e);
		else if (index >= (uint32_t)kvp_count[pool])
			m->error = (int)HV_S_CONT;
		else {
			snprintf((char *)e->key, sizeof(e->key), "%s", kvp_pool[pool][index].key);
			snprintf((char *)e->value, sizeof(e->value), "%s",
				 kvp_pool[pool][index].value);
		}
		say("kvp enumerate pool=%d index=%u %s", pool, index, m->error ? "end" : "item");
		break;
	}
	default:
		/* GET_IP_INFO / SET_IP_INFO: not part of this suite. */
		m->error = (int)HV_E_FAIL;
		say("kvp op=%d refused", op);
	}
}

static struct hv_kvp_msg kvp_msg;

static bool kvp_registered(const void *msg, ssize_t n)
{
	const struct hv_kvp_msg *m = msg;
	if (n != (ssize_t)sizeof(*m) || m->kvp_hdr.operation != KVP_OP_REGISTER1)
		return false;
	say("daemon kvp: registered (driver version %.16s)", (const char *)m->body.kvp_register.version);
	return true;
}

static void kvp_answer(void *msg, ssize_t n, const void **answer, size_t *len)
{
	struct hv_kvp_msg *m = msg;
	if (n == (ssize_t)sizeof(*m))
		kvp_serve(m);
	else
		m->error = (int)HV_E_FAIL;
	*answer = m;
	*len = sizeof(*m);
}

static struct hv_vss_msg vss_msg;

/* Nothing is mounted from a disk here, so there is nothing to freeze:
 * FREEZE and THAW succeed, as hv_vss_daemon's do with nothing mounted. */
static void vss_answer(void *msg, ssize_t n, const void **answer, size_t *len)
{
	struct hv_vss_msg *m = msg;
	int op = n == (ssize_t)sizeof(*m) ? m->vss_hdr.operation : -1;
	say("vss %s", op == VSS_OP_FREEZE ? "freeze" : op == VSS_OP_THAW ? "thaw"
		     : op == VSS_OP_HOT_BACKUP ? "hot-backup" : "unknown");
	m->error = op == VSS_OP_FREEZE || op == VSS_OP_THAW || op == VSS_OP_HOT_BACKUP
			   ? HV_S_OK
			   : (int)HV_E_FAIL;
	*answer = m;
	*len = sizeof(*m);
}

/* File copy: the kernel hands over paths already in UTF-8. */
static int fcopy_start(const struct hv_start_fcopy *s, int *out, char *name, size_t size)
{
	char dir[W_MAX_PATH * 2], file[W_MAX_PATH * 2];
	field_str(dir, sizeof(dir), (const __u8 *)s->path_name, sizeof(s->path_name));
	field_str(file, sizeof(file), (const __u8 *)s->file_name, sizeof(s->file_name));
	snprintf(name, size, "%s/%s", dir, file);
	if (s->copy_flags & CREATE_PATH)
		mkdir(dir, 0755);
	if (!access(name, F_OK) && !(s->copy_flags & OVER_WRITE))
		return (int)HV_ERROR_ALREADY_EXISTS;
	*out = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	say("fcopy start %s (%llu bytes, flags %#x)%s", name, (unsigned long long)s->file_size,
	    s->copy_flags, *out < 0 ? " refused" : "");
	return *out < 0 ? (int)HV_E_FAIL : 0;
}

static union {
	struct hv_fcopy_hdr hdr;
	struct hv_start_fcopy start;
	struct hv_do_fcopy copy;
	__u32 kernel_version;
} fcopy_msg;

/* One copy at a time, as the driver sends them. */
static void fcopy_answer(void *msg, ssize_t n, const void **answer, size_t *len)
{
	static int target = -1, error;
	static char name[W_MAX_PATH * 4];
	(void)msg;
	error = 0;
	switch (n >= (ssize_t)sizeof(fcopy_msg.hdr) ? (int)fcopy_msg.hdr.operation : -1) {
	case START_FILE_COPY:
		error = fcopy_start(&fcopy_msg.start, &target, name, sizeof(name));
		break;
	case WRITE_TO_FILE:
		if (fcopy_msg.copy.size > DATA_FRAGMENT || target < 0 ||
		    pwrite(target, fcopy_msg.copy.data, fcopy_msg.copy.size,
			   (off_t)fcopy_msg.copy.offset) != (ssize_t)fcopy_msg.copy.size)
			error = (int)HV_E_FAIL;
		break;
	case COMPLETE_FCOPY:
	case CANCEL_FCOPY:
		if (target >= 0)
			close(target);
		target = -1;
		if (fcopy_msg.hdr.operation == CANCEL_FCOPY && name[0])
			unlink(name);
		say("fcopy %s %s", fcopy_msg.hdr.operation == COMPLETE_FCOPY ? "complete" : "cancel",
		    name);
		name[0] = '\0';
		break;
	default:
		error = (int)HV_E_FAIL;
	}
	*answer = &error;
	*len = sizeof(error);
}

static const int fcopy_version = FCOPY_CURRENT_VERSION;
static const struct hv_kvp_msg kvp_register_msg = {.kvp_hdr.operation = KVP_OP_REGISTER1};
static const struct hv_vss_msg vss_register_msg = {.vss_hdr.operation = VSS_OP_REGISTER1};

static const struct daemon daemons[] = {
	{"kvp", "/dev/vmbus/hv_kvp", &kvp_register_msg, sizeof(kvp_register_msg), &kvp_msg,
	 sizeof(kvp_msg), kvp_registered, kvp_answer},
	{"vss", "/dev/vmbus/hv_vss", &vss_register_msg, sizeof(vss_register_msg), &vss_msg,
	 sizeof(vss_msg), NULL, vss_answer},
	{"fcopy", "/dev/vmbus/hv_fcopy", &fcopy_version, sizeof(fcopy_version), &fcopy_msg,
	 sizeof(fcopy_msg), NULL, fcopy_answer},
};

static bool start_daemons(char **argv, char *why, size_t why_len)
{
	(void)argv;
	for (size_t i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++) {
		pid_t pid = fork();
		if (pid == 0)
			daemon_run(&daemons[i]);
		if (pid < 0) {
			snprintf(why, why_len, "fork: %s", strerror(errno));
			return false;
		}
	}
	snprintf(why, why_len, "kvp vss fcopy");
	return true;
}

/* ---- the command loop ---- */

struct command {
	const char *name;
	bool (*run)(char **argv, char *why, size_t why_len);
};

static bool report_cmd(char **argv, char *why, size_t why_len)
{
	(void)argv;
	report();
	snprintf(why, why_len, "-");
	return true;
}

static const struct command commands[] = {
	{"report", report_cmd},
	{"disk-test", disk_test},
	{"disk-refuses-write", disk_refuses_write},
	{"crc", file_crc},
	{"tcp", tcp_exchange},
	{"frames", frames},
	{"clock", clock_cmd},
	{"daemons", start_daemons},
	{"wait", wait_path},
	{"cat", cat},
	{"swap", swap_cmd},
	{"hibernate", hibernate_cmd},
	{"resume", resume_cmd},
};

static void run_command(char *line)
{
	char *argv[16] = {0};
	int argc = 0;
	for (char *save, *w = strtok_r(line, " \t\r", &save); w && argc < 15;
	     w = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = w;
	if (!argc)
		return;
	char why[512] = "";
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name))
			continue;
		bool ok = commands[i].run(argv, why, sizeof(why));
		say("end %s %s %s", argv[0], ok ? "ok" : "fail", why);
		return;
	}
	say("end %s fail unknown command", argv[0]);
}

/* The console without echo or line editing surprises: the host types
 * commands, one per line. */
static void console_setup(void)
{
	struct termios t;
	if (tcgetattr(0, &t))
		return;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	t.c_lflag |= ICANON;
	t.c_iflag |= ICRNL;
	tcsetattr(0, TCSANOW, &t);
}

static void mount_basics(void)
{
	mkdir("/dev", 0755);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/tmp", 01777);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) && errno != EBUSY)
		say("mount /dev: %s", strerror(errno));
	if (mount("proc", "/proc", "proc", 0, NULL))
		say("mount /proc: %s", strerror(errno));
	if (mount("sysfs", "/sys", "sysfs", 0, NULL))
		say("mount /sys: %s", strerror(errno));
}

/* hv_utils' shutdown runs /sbin/poweroff (orderly_poweroff), this program. */
static int poweroff_main(void)
{
	/* The kernel starts it with no console: take one to report on. */
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 && fd != 1) {
		dup2(fd, 1);
		close(fd);
	}
	say("poweroff: the host asked for it; syncing");
	sync();
	reboot(RB_POWER_OFF);
	say("poweroff: reboot(): %s", strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (!strcmp(self, "poweroff"))
		return poweroff_main();
	if (getpid() != 1) {
		fprintf(stderr, "%s: the Linux guest suite's /init; it runs as process 1\n", self);
		return 2;
	}
	/* Daemons and children that end are reaped by the kernel for us. */
	signal(SIGCHLD, SIG_IGN);
	mount_basics();
	console_setup();
	report();
	say("ready");
	char line[LINE_MAX_LEN];
	for (;;) {
		ssize_t n = read(0, line, sizeof(line) - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The console hung up; nothing to do but wait for the
			 * host, which ends the machine. */
			pause();
			continue;
		}
		line[n] = '\0';
		for (char *save, *l = strtok_r(line, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			run_command(l);
	}
}

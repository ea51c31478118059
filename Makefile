# Build and install PortKnockO like a service.
#   make                      release build
#   make install              to $(DESTDIR)$(PREFIX): binaries, man pages, systemd unit, completions,
#                             an example /etc/pknock/pknock.toml if none exists
#   make uninstall
#   make deb                  pknockd_VERSION_ARCH.deb and pknock_VERSION_ARCH.deb in this directory
#                             (static Swift runtime, own scratch path .build-deb; Scripts/package/)
# PREFIX defaults to /usr/local; packagers use PREFIX=/usr SYSCONFDIR=/etc DESTDIR=...
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
UNITDIR     ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SWIFT       ?= swift
SWIFTFLAGS  ?= -c release
INSTALL     ?= install
COMPLETIONS ?= .build/completions

BIN_PATH = $(shell $(SWIFT) build $(SWIFTFLAGS) --show-bin-path)

.PHONY: all build install uninstall completions deb
all: build

build:
	$(SWIFT) build $(SWIFTFLAGS) --product pknockd
	$(SWIFT) build $(SWIFTFLAGS) --product pknock

completions: build
	mkdir -p $(COMPLETIONS)
	$(BIN_PATH)/pknock --generate-completion-script bash > $(COMPLETIONS)/pknock.bash
	$(BIN_PATH)/pknock --generate-completion-script zsh > $(COMPLETIONS)/_pknock
	$(BIN_PATH)/pknock --generate-completion-script fish > $(COMPLETIONS)/pknock.fish
	$(BIN_PATH)/pknockd --generate-completion-script bash > $(COMPLETIONS)/pknockd.bash
	$(BIN_PATH)/pknockd --generate-completion-script zsh > $(COMPLETIONS)/_pknockd
	$(BIN_PATH)/pknockd --generate-completion-script fish > $(COMPLETIONS)/pknockd.fish

install: build completions
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	$(INSTALL) -m 0755 $(BIN_PATH)/pknock $(DESTDIR)$(BINDIR)/pknock
	$(INSTALL) -m 0755 $(BIN_PATH)/pknockd $(DESTDIR)$(SBINDIR)/pknockd
	$(INSTALL) -m 0644 Docs/man/pknock.toml.5 $(DESTDIR)$(MANDIR)/man5/pknock.toml.5
	for page in Docs/man/pknock.1 Docs/man/pknockd.8; do \
		[ ! -f $$page ] || $(INSTALL) -m 0644 $$page $(DESTDIR)$(MANDIR)/man$${page##*.}/$${page##*/}; done
	sed -e 's|/usr/local/sbin/pknockd|$(SBINDIR)/pknockd|; s|/usr/local/bin/pknock|$(BINDIR)/pknock|; s|/etc/pknock/|$(SYSCONFDIR)/pknock/|g' \
		Docs/systemd/pknockd.service > $(DESTDIR)$(UNITDIR)/pknockd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/pknockd.service
	$(INSTALL) -m 0644 $(COMPLETIONS)/pknock.bash $(DESTDIR)$(BASHCOMPDIR)/pknock
	$(INSTALL) -m 0644 $(COMPLETIONS)/pknockd.bash $(DESTDIR)$(BASHCOMPDIR)/pknockd
	$(INSTALL) -m 0644 $(COMPLETIONS)/_pknock $(COMPLETIONS)/_pknockd $(DESTDIR)$(ZSHCOMPDIR)/
	$(INSTALL) -m 0644 $(COMPLETIONS)/pknock.fish $(COMPLETIONS)/pknockd.fish $(DESTDIR)$(FISHCOMPDIR)/
	$(INSTALL) -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/pknock
	[ -e $(DESTDIR)$(SYSCONFDIR)/pknock/pknock.toml ] || \
		$(INSTALL) -m 0600 examples/pknock.toml $(DESTDIR)$(SYSCONFDIR)/pknock/pknock.toml

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pknock $(DESTDIR)$(SBINDIR)/pknockd $(DESTDIR)$(UNITDIR)/pknockd.service \
		$(DESTDIR)$(MANDIR)/man1/pknock.1 $(DESTDIR)$(MANDIR)/man5/pknock.toml.5 $(DESTDIR)$(MANDIR)/man8/pknockd.8 \
		$(DESTDIR)$(BASHCOMPDIR)/pknock $(DESTDIR)$(BASHCOMPDIR)/pknockd $(DESTDIR)$(ZSHCOMPDIR)/_pknock \
		$(DESTDIR)$(ZSHCOMPDIR)/_pknockd $(DESTDIR)$(FISHCOMPDIR)/pknock.fish $(DESTDIR)$(FISHCOMPDIR)/pknockd.fish
	@echo "left $(SYSCONFDIR)/pknock in place"

deb:
	Scripts/package/build-deb.sh

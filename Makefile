SHELL := /bin/bash
# Rackstack build, test and run targets. `make test` works on a fresh Debian
# machine: it installs what the tests need (idempotently) and runs unit and
# integration tests.
GO        ?= go
BIN       := $(CURDIR)/bin
DATA      ?= $(CURDIR)/.rackstack
# Debian packages the tests drive: the real OpenStack CLI, the object
# storage clients (swift, aws, s3cmd, rclone), and what the networking test
# runs in its namespaces (ip, ping, tcpdump), genisoimage for config drives,
# the IPMI BMC simulator and client the bare-metal tests power servers with,
# and the iPXE builds (for real firmware and QEMU's NIC ROMs, BIOS and UEFI).
# sfdisk (fdisk) to read the partition tables rack-agent writes, and busybox's
# nc, the bare-metal ramdisk test's only path from its guest to loopback.
# python3-ironicclient gives the CLI its `openstack baremetal` commands; curl
# is a second TFTP client the TFTP server is tested with.
TEST_DEBS := python3-openstackclient python3-swiftclient awscli s3cmd rclone iproute2 iputils-ping tcpdump genisoimage qemu-system-x86 qemu-utils ipxe ipxe-qemu ovmf openipmi ipmitool fdisk busybox-static python3-ironicclient curl nbdkit libnbd-bin fio chromium novnc
# What `make generate` needs to rebuild the committed BPF objects, and what
# `make bench` compares against and runs (QEMU machines PXE-booting from
# iPXE ROMs beside the site's busybox udhcpd, for the provision suite).
GEN_DEBS  := clang llvm libbpf-dev linux-libc-dev
BENCH_DEBS := iperf3 iptables qemu-system-x86 ipxe-qemu busybox-static nbdkit libnbd-bin fio
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The build --version reports (the toolchain's own VCS stamp is off where
# GOFLAGS has -buildvcs=false).
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X github.com/rackstack/rackstack/fabric/buildinfo.version=$(VERSION)

.PHONY: all build test unit integration deps run purge generate lint bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# deps installs what tests need; packages already present are skipped.
deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
	$(GO) mod download

unit:
	$(GO) test -count=1 ./...

# The integration tests run in two processes at once: SIDE_TESTS, which
# boot no guest and keep to namespaces and BPF pin directories named for
# their own process (no host bridge, tap or provisioning port), beside the
# rest, which run one at a time. The two
# -v logs are build/integration-side.log and build/integration.log.
# INTEG_RUN narrows the others (make integration INTEG_RUN='^TestCompute$$'
# SIDE_TESTS=NONE runs one test).
INTEG_RUN  ?= .
# Side tests: API-only clouds (dataplane and compute off), storage nodes,
# and clusters on loopback.
SIDE_LIST := \
	TestObjectStorage TestS3Conformance TestS3Versioning \
	TestSwiftVersionedWrites TestSwiftContainerSync TestBlockExport \
	TestRackbenchCloud \
	TestVolumeMicroversions TestVolumeGroups TestConsistentGroupSnapshot \
	TestVolumeAnswersAsCinder \
	TestBaremetalAPI TestControlPlaneCluster TestForkedCLIAnswersAsTheCLI \
	TestFaultMixedWorkload TestFaultRestartStorm TestFaultBlockLeaderKill \
	TestFaultAPIsLeaderKill TestFaultNodeLost TestFaultDiskWiped TestFaultFrozenNodeReads \
	TestDevCloudConductsFakeHardware TestTerraformStorage \
	TestTerraformNetwork TestTrustCLI TestTrustUsesAcrossNodes \
	TestInheritedRoleCLI TestPolicyCLI TestEndpointFilterCLI \
	TestUnifiedLimitsCLI TestAppCredAccessRules \
	TestApplicationCredentialCLI TestOAuth1CLI TestDomainConfigClients \
	TestEC2TokensRealSignatures TestNeutronSharedGroupsBulkAndPaging \
	TestWebDownloadImport TestImageImportCLI TestNovaImageProxy \
	TestNovaSecurityGroupProxy TestBaremetalUnbuiltCalls \
	TestRollingUpgrade
empty :=
space := $(empty) $(empty)
SIDE_TESTS ?= ^($(subst $(space),|,$(strip $(SIDE_LIST))))$$
INTEG_SHOW := '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go'

integration: build
	@mkdir -p build
	$(GO) test -c -tags integration -o build/integration.test ./integration
	@cd integration && export RACKSTACK_BIN=$(BIN); \
	../build/integration.test -test.v -test.timeout 35m -test.run '$(SIDE_TESTS)' > ../build/integration-side.log 2>&1 & side=$$!; \
	../build/integration.test -test.v -test.timeout 35m -test.run '$(INTEG_RUN)' -test.skip '$(SIDE_TESTS)' 2>&1 | tee ../build/integration.log | grep -E $(INTEG_SHOW); rc=$${PIPESTATUS[0]}; \
	wait $$side; side_rc=$$?; echo "== beside them:"; grep -E $(INTEG_SHOW) ../build/integration-side.log; \
	echo "integration: rc=$$rc, beside them rc=$$side_rc"; [ $$rc = 0 ] && [ $$side_rc = 0 ]

# The unit tests run while the ramdisk and the binaries the integration
# tests start are built: no unit test uses those (the qemu tests boot the
# test image, so it comes first). Each target's output stays in one piece.
test: deps
	@mkdir -p build
	$(MAKE) test-image
	$(MAKE) -j2 --output-sync=target unit integration-prereqs
	$(MAKE) integration

.PHONY: integration-prereqs
integration-prereqs: ramdisk build terraform-provider

# terraform-provider builds the Terraform OpenStack provider the
# integration tests (TestTerraformNetwork, TestTerraformStorage) apply
# with, from the Go module
# proxy into build/ (once per version: the file is the target). Keep the
# version in step with integration/terraform_network_test.go.
TF_PROVIDER_VERSION := v3.4.0
TF_PROVIDER := $(CURDIR)/build/terraform-provider-openstack-$(TF_PROVIDER_VERSION)/terraform-provider-openstack
.PHONY: terraform-provider
terraform-provider: $(TF_PROVIDER)
$(TF_PROVIDER):
	GOBIN=$(dir $@) $(GO) install github.com/terraform-provider-openstack/terraform-provider-openstack/v3@$(TF_PROVIDER_VERSION)

# run starts a one-node cloud on embedded defaults (data in ./.rackstack).
# It holds the terminal; Ctrl-C stops rackd (guests keep running, as they
# do across any rackd restart).
run: build
	$(BIN)/rackd dev --data-dir $(DATA)

# purge removes what `make run` made, once rackd is stopped: its guests
# and their taps, its BPF pins, QEMU's run dir and the data dir; and what
# an integration run killed by its timeout left running (the suite's
# TestMain reaps it, here with no test to run).
purge: build
	$(BIN)/rackd dev --purge --data-dir $(DATA)
	RACKSTACK_BIN=$(BIN) $(GO) test -count=1 -tags integration -run '^$$' ./integration/

# generate rebuilds bpf/*_bpfel.{go,o} from the C (committed: building
# needs no clang).
generate:
	@missing=""; for p in $(GEN_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; fi
	$(GO) generate ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...

bench: build test-image ramdisk
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; fi
	$(BIN)/rackbench control
	$(BIN)/rackbench storage
	$(BIN)/rackbench block
	$(BIN)/rackbench dataplane
	$(BIN)/rackbench launch
	$(BIN)/rackbench provision

# test-image builds build/test-image.qcow2, the small guest the hypervisor
# tests boot (node/testimage/README.md). The kernel and busybox .debs are
# downloaded into build/testimage/ by the script; these are the tools it runs.
IMAGE_DEBS := fdisk dosfstools mtools syslinux syslinux-common qemu-utils cpio gzip
.PHONY: test-image
test-image:
	@missing=""; for p in $(IMAGE_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
	node/testimage/build.sh $(CURDIR)/build/test-image.qcow2

# ramdisk builds build/ramdisk/{vmlinuz,initramfs.zst}, the discovery/deploy
# ramdisk bare-metal machines PXE-boot (provision/ramdisk/build.sh, which
# downloads the kernel and busybox .debs into build/ramdisk-cache/ and builds
# a static rack-agent); these are the tools it runs.
RAMDISK_DEBS := cpio zstd
.PHONY: ramdisk
ramdisk:
	@missing=""; for p in $(RAMDISK_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	fi
	provision/ramdisk/build.sh $(CURDIR)/build/ramdisk

clean:
	rm -rf $(BIN) build

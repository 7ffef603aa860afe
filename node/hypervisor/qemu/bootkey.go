package qemu

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// An encrypted boot disk is opened from QEMU's command line (it must be
// there before the firmware runs, in its PCI slot, with its boot index),
// so its LUKS passphrase goes to QEMU as a secret object read from a
// pipe the process inherits: the command line names only /dev/fd/<n>,
// nothing is written to a file, and the pipe is empty once QEMU has
// read it. The same secret id as a plugged disk's lets ResizeDisk reopen
// the LUKS node over a grown export.

// KeyPipe is a pipe's read end holding pass (base64) and the write end
// closed, so a reader gets the passphrase and then end of file: given to
// a QEMU tool as an extra file, `secret,format=base64,file=/dev/fd/N`
// reads it, and no key is on a command line or in a file.
func KeyPipe(pass []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// A base64 passphrase is far below a pipe's buffer: the write does
	// not wait for the reader.
	_, err = w.WriteString(base64.StdEncoding.EncodeToString(pass))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("pass the key: %w", err)
	}
	return r, nil
}

// keyPipes makes a key pipe per encrypted disk of spec; files go to the
// child in order as fds 3, 4, ...; keys maps each disk's index to the
// path its secret object reads.
func keyPipes(spec hypervisor.VMSpec) (files []*os.File, keys map[int]string, err error) {
	keys = map[int]string{}
	for i, d := range spec.Disks {
		if d.Encryption == nil {
			continue
		}
		r, err := KeyPipe(d.Encryption.Passphrase)
		if err != nil {
			closeAll(files)
			return nil, nil, err
		}
		keys[i] = "/dev/fd/" + strconv.Itoa(3+len(files))
		files = append(files, r)
	}
	return files, keys, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// qemuImg is the qemu-img beside the driver's QEMU, or the one on PATH.
func (d *Driver) qemuImg() string {
	if p := filepath.Join(filepath.Dir(d.binary), "qemu-img"); fileExists(p) {
		return p
	}
	return "qemu-img"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// formatBootDisk writes a new LUKS header on an encrypted NBD disk that
// has none yet (a blank volume), as formatLUKS does for a plugged one:
// the payload is what follows the header, to the export's end (size 0).
// QEMU cannot open a LUKS layer on its command line that is not there.
func (d *Driver) formatBootDisk(ctx context.Context, disk hypervisor.Disk) error {
	target := (&url.URL{Scheme: "nbd+unix", Path: "/" + disk.NBDExport, RawQuery: "socket=" + url.QueryEscape(disk.NBDSocket)}).String()
	var err error
	for try := 0; try < luksTries; try++ {
		var pipe *os.File
		if pipe, err = KeyPipe(disk.Encryption.Passphrase); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, d.qemuImg(), "create", "-q", "-f", "luks",
			"--object", "secret,id=key,format=base64,file=/dev/fd/3",
			"-o", "key-secret=key,cipher-alg="+disk.Encryption.CipherAlg+",cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time="+strconv.Itoa(luksIterTime),
			target, "0")
		cmd.ExtraFiles = []*os.File{pipe}
		out, runErr := cmd.CombinedOutput()
		pipe.Close()
		if runErr == nil {
			return nil
		}
		err = fmt.Errorf("write the luks header of boot disk %s: %v: %s", disk.ID, runErr, strings.TrimSpace(string(out)))
		if !strings.Contains(string(out), errCPUClock) {
			return err
		}
	}
	return err
}

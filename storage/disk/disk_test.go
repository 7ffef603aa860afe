package disk

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

func TestCommitMakesShardVisible(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Create("abc.0")
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello shard"))
	if _, err := d.Open("abc.0", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("uncommitted shard visible: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open("abc.0", 6)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "shard" {
		t.Fatalf("read %q at offset 6", got)
	}
	names, _ := d.List()
	if len(names) != 1 || names[0] != "abc.0" {
		t.Fatalf("list = %v", names)
	}
	if err := d.Remove("abc.0"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("abc.0"); err != nil {
		t.Fatalf("removing a missing shard: %v", err)
	}
}

func TestAbortAndRestartLeaveNothing(t *testing.T) {
	root := t.TempDir()
	d, _ := OpenDir(root)
	w, _ := d.Create("xyz.1")
	w.Write([]byte("partial"))
	w.Abort()
	w2, _ := d.Create("xyz.2")
	w2.Write([]byte("crash before commit"))
	// A restart (reopen) clears temporary files of interrupted writes.
	d2, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if d2.ID() != d.ID() {
		t.Fatal("a disk changed its id across a restart")
	}
	tmps, _ := os.ReadDir(root + "/tmp")
	if len(tmps) != 0 {
		t.Fatalf("%d temporary files left", len(tmps))
	}
	if names, _ := d2.List(); len(names) != 0 {
		t.Fatalf("shards visible: %v", names)
	}
}

func TestBadNames(t *testing.T) {
	d, _ := OpenDir(t.TempDir())
	for _, n := range []string{"", "a", "../etc", "a/b", ".hidden"} {
		if _, err := d.Create(n); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}

func TestWipedDirectoryIsRefilledUnderTheSameID(t *testing.T) {
	root := t.TempDir()
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if wiped, err := d.Check(); wiped || err != nil {
		t.Fatalf("fresh disk: wiped=%v err=%v", wiped, err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open("abc.0", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open on wiped disk: %v", err)
	}
	w, err := d.Create("abc.0")
	if err != nil {
		t.Fatalf("create on wiped disk: %v", err)
	}
	w.Write([]byte("x"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	// The write that found the disk wiped rebuilt it; Check still reports
	// the wipe once, so everything that was there gets healed.
	if wiped, err := d.Check(); !wiped || err != nil {
		t.Fatalf("disk rebuilt by a write: wiped=%v err=%v", wiped, err)
	}
	if wiped, err := d.Check(); wiped || err != nil {
		t.Fatalf("second check: wiped=%v err=%v", wiped, err)
	}
	os.RemoveAll(root)
	if wiped, err := d.Check(); !wiped || err != nil {
		t.Fatalf("wiped disk: wiped=%v err=%v", wiped, err)
	}
	again, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != d.ID() {
		t.Fatalf("id changed from %s to %s", d.ID(), again.ID())
	}
}

func TestFilesystemNamesSharedSpace(t *testing.T) {
	root := t.TempDir()
	a, err := OpenDir(filepath.Join(root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDir(filepath.Join(root, "b"))
	if err != nil {
		t.Fatal(err)
	}
	fa, err := a.Filesystem()
	if err != nil {
		t.Fatal(err)
	}
	fb, err := b.Filesystem()
	if err != nil || fa != fb || fa == "" {
		t.Fatalf("two directories of one filesystem: %q and %q (%v)", fa, fb, err)
	}
	// /proc is another filesystem than any temporary directory.
	proc := &Dir{root: "/proc"}
	if fp, err := proc.Filesystem(); err != nil || fp == fa {
		t.Fatalf("/proc filesystem %q, temp dir %q (%v)", fp, fa, err)
	}
}

// A shard's bytes are the ones written, in order, whatever mix of Write
// and WriteBlocks they came by and wherever the stages of direct I/O
// cut them: small shards (never direct), odd sizes over several stages,
// and the page cache fallback of a filesystem without direct I/O.
func TestWriteBlocksWritesEveryBlockInOrder(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// place puts block i where it is written from: its own allocation,
	// or (when it says so) in memory aligned as its file offset, as a
	// blob write places its blocks (Aligned).
	plain := func(i, off, n int) []byte { return make([]byte, n) }
	write := func(t *testing.T, name string, blocks, blockSize, batch int, place func(i, off, n int) []byte) *fileWriter {
		w, err := d.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("head"))
		want := []byte("head")
		var bs [][]byte
		for i := 0; i < blocks; i++ {
			b := place(i, len(want), blockSize+i%13)
			for j := range b {
				b[j] = byte(i*7 + j)
			}
			bs = append(bs, b)
			want = append(want, b...)
			if len(bs) == batch || i == blocks-1 {
				if err := w.(interface{ WriteBlocks([][]byte) error }).WriteBlocks(bs); err != nil {
					t.Fatal(err)
				}
				bs = nil
			}
		}
		w.Write([]byte("tail"))
		want = append(want, "tail"...)
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		r, err := d.Open(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Fatalf("shard holds %d bytes, want %d; first difference at %d", len(got), len(want), at)
		}
		return w.(*fileWriter)
	}
	aligned := func(i, off, n int) []byte {
		return Aligned(make([]byte, n+DirectAlign), int64(off), n)
	}
	// Every block aligned as its offset but every fifth, which is not:
	// those go through the stage, the others from where they are.
	mixed := func(i, off, n int) []byte {
		if i%5 == 4 {
			return make([]byte, n)
		}
		return aligned(i, off, n)
	}
	t.Run("small", func(t *testing.T) {
		if w := write(t, "small.0", 3, 100, 8, plain); w.direct != 0 {
			t.Fatalf("a shard smaller than a stage wrote %d bytes direct", w.direct)
		}
		// Aligned or not, a shard under a stage is never direct.
		if w := write(t, "small.1", 3, 3*DirectAlign, 8, mixed); w.direct != 0 || w.inPlace != 0 {
			t.Fatalf("a shard smaller than a stage wrote %d bytes direct", w.direct)
		}
	})
	t.Run("extent", func(t *testing.T) {
		// 32 blocks of a volume extent's 32 KiB shards with their
		// checksums, and more: several stages and a tail.
		w := write(t, "extent.0", 75, 4+32<<10, 8, plain)
		if supportsDirect(t, d.Path()) && w.direct < 2*stageSize {
			t.Fatalf("%d bytes written direct on a filesystem that has direct I/O", w.direct)
		}
		if w.inPlace != 0 {
			t.Fatalf("%d bytes written in place from blocks not aligned as their offsets", w.inPlace)
		}
	})
	t.Run("big stage", func(t *testing.T) {
		// Without direct I/O no stage is written direct, so there is
		// nothing to count; CI's machines have it, and there it fails.
		testenv.Require(t, supportsDirect(t, d.Path()), "direct I/O (O_DIRECT) on the test directory's filesystem")
		// A copying writer (a volume's blocks, one at a time) takes a
		// big stage after its first: 150 blocks (~4.7 MiB) go out in a
		// handful of direct writes, not one per 256 KiB.
		const blocks, size = 150, 4 + 32<<10
		w := write(t, "big.0", blocks, size, 1, plain)
		if most := blocks*size/bigStageSize + 3; w.directIO > most {
			t.Fatalf("%d direct writes for %d bytes copied through the stage, want at most %d", w.directIO, w.direct, most)
		}
		// With every big stage taken, a writer goes on with its small
		// one, and writes the same bytes.
		var held []*[]byte
		for b := getBigStage(); b != nil; b = getBigStage() {
			held = append(held, b)
		}
		defer func() {
			for _, b := range held {
				putStage(b)
			}
		}()
		w = write(t, "big.1", blocks, size, 1, plain)
		if least := int(w.direct / stageSize); w.directIO < least {
			t.Fatalf("%d direct writes with no big stage to be had, want at least %d", w.directIO, least)
		}
	})
	t.Run("aligned", func(t *testing.T) {
		// Blocks placed as their offsets are written from their own
		// memory, batches of volume blocks and one object block at a
		// time alike; the page each shares with the block before it,
		// the unaligned blocks and the tail go through the stage.
		for _, c := range []struct {
			name         string
			blocks, size int
			batch        int
			place        func(i, off, n int) []byte
		}{
			{"extent.1", 75, 4 + 32<<10, 8, aligned},
			{"object.0", 9, 4 + 1<<20, 1, mixed},
			{"object.1", 9, 4 + 1<<20, 3, aligned},
		} {
			w := write(t, c.name, c.blocks, c.size, c.batch, c.place)
			if supportsDirect(t, d.Path()) && w.inPlace < int64(c.blocks*c.size/2) {
				t.Fatalf("%s: %d bytes written in place from aligned blocks", c.name, w.inPlace)
			}
		}
	})
	t.Run("fallback", func(t *testing.T) {
		setDirectHook = func(f *os.File, on bool) error {
			if on {
				return syscall.EINVAL
			}
			return SetDirect(f, on)
		}
		defer func() { setDirectHook = SetDirect }()
		if w := write(t, "fallback.0", 75, 4+32<<10, 8, plain); w.direct != 0 {
			t.Fatalf("%d bytes written direct when it was refused", w.direct)
		}
		if w := write(t, "fallback.1", 75, 4+32<<10, 8, mixed); w.direct != 0 {
			t.Fatalf("%d bytes written direct when it was refused", w.direct)
		}
	})
}

// supportsDirect says whether the filesystem of dir takes O_DIRECT.
func supportsDirect(t *testing.T, dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o600)
	if err != nil {
		t.Logf("no direct I/O in %s: %v", dir, err)
		return false
	}
	f.Close()
	os.Remove(f.Name())
	return true
}

// CommitDeferred leaves the directory's fsync to the DirSyncs, which
// syncs each directory once however many shards went into it, and
// reports a directory it could not sync.
func TestCommitDeferredSyncsEachDirectoryOnce(t *testing.T) {
	var mu sync.Mutex
	synced := map[string]int{}
	fail := ""
	syncDirHook = func(dir string) error {
		mu.Lock()
		defer mu.Unlock()
		synced[dir]++
		if dir == fail {
			return errors.New("injected directory sync failure")
		}
		return nil
	}
	defer func() { syncDirHook = syncDir }()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ds DirSyncs
	// Three shards in directory "ab", one in "cd".
	for _, name := range []string{"ab1.0", "ab2.0", "ab3.0", "cd1.0"} {
		w, err := d.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte(name), 100000))
		if err := w.(DeferredCommitter).CommitDeferred(&ds); err != nil {
			t.Fatal(err)
		}
		// Whole and readable under its name already.
		r, err := d.Open(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, bytes.Repeat([]byte(name), 100000)) {
			t.Fatalf("%s: read %d bytes back, not what was written", name, len(got))
		}
	}
	if len(synced) != 0 {
		t.Fatalf("directories synced before Sync: %v", synced)
	}
	if ds.Len() != 2 {
		t.Fatalf("%d directories wait for their sync, want 2", ds.Len())
	}
	if err := ds.Sync(); err != nil {
		t.Fatal(err)
	}
	ab, cd := filepath.Dir(d.path("ab1.0")), filepath.Dir(d.path("cd1.0"))
	if len(synced) != 2 || synced[ab] != 1 || synced[cd] != 1 {
		t.Fatalf("synced %v, want %s and %s once each", synced, ab, cd)
	}
	if ds.Len() != 0 {
		t.Fatalf("%d directories still wait after Sync", ds.Len())
	}
	// A directory that cannot be synced fails the Sync.
	fail = ab
	w, _ := d.Create("ab4.0")
	w.Write([]byte("x"))
	if err := w.(DeferredCommitter).CommitDeferred(&ds); err != nil {
		t.Fatal(err)
	}
	if err := ds.Sync(); err == nil {
		t.Fatal("Sync of a directory that failed its fsync succeeded")
	}
	// Commit still syncs its directory itself.
	fail = ""
	w, _ = d.Create("cd2.0")
	w.Write([]byte("y"))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if synced[cd] != 2 {
		t.Fatalf("Commit synced %s %d times in all, want 2", cd, synced[cd])
	}
}

// A shard being written has no name anywhere (an O_TMPFILE, which a
// crash leaves nothing of), Commit gives it its name, and a Commit over
// a shard of that name (a heal rewriting a damaged one) replaces it.
// Filesystems without O_TMPFILE get the same through a named temporary
// file.
func TestCommitReplacesAndUnnamedFilesLeaveNoTrace(t *testing.T) {
	for _, named := range []bool{false, true} {
		noTmpfileHook = named
		root := t.TempDir()
		d, err := OpenDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for i, body := range []string{"first version", "second, longer version"} {
			w, err := d.Create("rep.0")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(bytes.Repeat([]byte(body), 50000))
			tmps, _ := os.ReadDir(filepath.Join(root, "tmp"))
			if !named && len(tmps) != 0 {
				t.Fatalf("a shard being written has a name in tmp: %v", tmps)
			}
			if named && len(tmps) != 1 {
				t.Fatalf("named temporary files: %v, want 1", tmps)
			}
			if err := w.Commit(); err != nil {
				t.Fatalf("commit %d (named temporaries %v): %v", i, named, err)
			}
			r, err := d.Open("rep.0", 0)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, bytes.Repeat([]byte(body), 50000)) {
				t.Fatalf("commit %d (named temporaries %v): read back %d bytes, not version %d", i, named, len(got), i)
			}
		}
		w, _ := d.Create("gone.0")
		w.Write([]byte("aborted"))
		w.Abort()
		if tmps, _ := os.ReadDir(filepath.Join(root, "tmp")); len(tmps) != 0 {
			t.Fatalf("named temporaries %v: tmp holds %v after commits and an abort", named, tmps)
		}
		if names, _ := d.List(); len(names) != 1 || names[0] != "rep.0" {
			t.Fatalf("named temporaries %v: shards %v, want rep.0 alone", named, names)
		}
	}
	noTmpfileHook = false
}

// With DeferFiles, CommitDeferred names a shard without fsyncing it and
// leaves that to Sync too: each file once, then forgotten; Take moves
// what one DirSyncs waits for into another, and a file that cannot be
// synced fails the Sync.
func TestDeferFilesLeavesTheFilesFsyncsToSync(t *testing.T) {
	var mu sync.Mutex
	synced := map[string]int{}
	fail := ""
	syncFileHook = func(path string) error {
		mu.Lock()
		defer mu.Unlock()
		synced[path]++
		if path == fail {
			return errors.New("injected fsync failure")
		}
		return syncFile(path)
	}
	defer func() { syncFileHook = syncFile }()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	part := &DirSyncs{DeferFiles: true}
	for _, name := range []string{"ab1.0", "ab2.0", "cd1.0"} {
		w, err := d.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(bytes.Repeat([]byte(name), 300000)) // past a direct-I/O stage
		if err := w.(DeferredCommitter).CommitDeferred(part); err != nil {
			t.Fatal(err)
		}
		r, err := d.Open(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, bytes.Repeat([]byte(name), 300000)) {
			t.Fatalf("%s: read %d bytes back, not what was written", name, len(got))
		}
	}
	if len(synced) != 0 {
		t.Fatalf("files fsync'd before Sync: %v", synced)
	}
	var all DirSyncs
	all.Take(part)
	if len(part.Files()) != 0 || part.Len() != 0 {
		t.Fatal("Take left the files with the DirSyncs they came from")
	}
	if got := len(all.Files()); got != 3 || all.Len() != 2 {
		t.Fatalf("%d files and %d directories wait, want 3 and 2", got, all.Len())
	}
	if err := all.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ab1.0", "ab2.0", "cd1.0"} {
		if synced[d.path(name)] != 1 {
			t.Fatalf("%s fsync'd %d times, want once", name, synced[d.path(name)])
		}
	}
	if len(all.Files()) != 0 {
		t.Fatal("files still wait after Sync")
	}
	w, _ := d.Create("ab3.0")
	w.Write([]byte("x"))
	if err := w.(DeferredCommitter).CommitDeferred(part); err != nil {
		t.Fatal(err)
	}
	fail = d.path("ab3.0")
	if err := part.Sync(); err == nil {
		t.Fatal("Sync of a file that failed its fsync succeeded")
	}
}

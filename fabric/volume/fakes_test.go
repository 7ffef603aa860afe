package volume

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
)

// fakeData is the image service and the data mover as the service sees
// them. Volumes' contents are labels: an image copy labels the volume
// with the image, so a test can follow bytes without moving any.
type fakeData struct {
	blocks *fakeBlocks
	mu     sync.Mutex
	images map[string]ImageInfo
	// content labels what each volume holds.
	content map[string]string
	// fail fails the next data calls; gate, if set, holds them until
	// closed.
	fail error
	gate chan struct{}
	// made are the images uploads made.
	made map[string]*fakeImage
}

func newFakeData(b *fakeBlocks) *fakeData {
	return &fakeData{blocks: b, images: map[string]ImageInfo{}, content: map[string]string{}}
}

func (d *fakeData) Get(_ context.Context, _ *api.Principal, id string) (ImageInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.images[id]
	if !ok {
		return ImageInfo{}, &api.Error{Status: http.StatusNotFound, Msg: "no image " + id}
	}
	return img, nil
}

func (d *fakeData) wait() error {
	d.mu.Lock()
	gate, fail := d.gate, d.fail
	d.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return fail
}

func (d *fakeData) ImageToVolume(_ context.Context, image, volume string) error {
	if err := d.wait(); err != nil {
		return err
	}
	if _, ok := d.blocks.sizeOf(volume); !ok {
		return fmt.Errorf("copy image %s: no volume %s", image, volume)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.content[volume] = "image:" + image
	return nil
}

func (d *fakeData) Backup(_ context.Context, j BackupJob) (int, int64, error) {
	if err := d.wait(); err != nil {
		return 0, 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.content[j.Container+"/"+j.Prefix] = d.content[j.Source]
	return 2, 4 << 20, nil
}

func (d *fakeData) Restore(_ context.Context, project, container, prefix, volume string) error {
	if err := d.wait(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.content[container+"/"+prefix]
	if !ok {
		return fmt.Errorf("restore: no backup %s/%s", container, prefix)
	}
	d.content[volume] = c
	return nil
}

func (d *fakeData) Delete(_ context.Context, project, container, prefix string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.content, container+"/"+prefix)
	return nil
}

func (d *fakeData) setContent(id, c string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.content[id] = c
}

func (d *fakeData) contentOf(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.content[id]
}

func (d *fakeData) addImage(img ImageInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.images[img.ID] = img
}

// waitStatus polls a volume (or anything at path under key) until its
// status is want.
func (f *fixture) waitStatus(token, path, key, want string) map[string]any {
	f.t.Helper()
	var got map[string]any
	for i := 0; i < 500; i++ {
		r := f.call("GET", path, token, nil)
		if r.Code == http.StatusOK {
			got = r.Body[key].(map[string]any)
			if got["status"] == want {
				return got
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("%s: status %v, want %s", path, got["status"], want)
	return nil
}

// fakeImage is an image an upload made.
type fakeImage struct {
	NewImage
	project, status string
}

func (d *fakeData) CreateImage(_ context.Context, p *api.Principal, img NewImage) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.made == nil {
		d.made = map[string]*fakeImage{}
	}
	id := api.NewUUID()
	d.made[id] = &fakeImage{NewImage: img, project: p.ProjectID, status: "queued"}
	return id, nil
}

// VolumeToImage labels the image with what the snapshot's volume holds.
func (d *fakeData) VolumeToImage(_ context.Context, from, image, diskFormat string) error {
	if err := d.wait(); err != nil {
		return err
	}
	d.blocks.mu.Lock()
	vol, ok := d.blocks.snapshot[from]
	_, exists := d.blocks.size[from]
	d.blocks.mu.Unlock()
	if !ok || !exists {
		return fmt.Errorf("upload: %s is not a snapshot", from)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.made[image]
	if !ok {
		return fmt.Errorf("upload: no image %s", image)
	}
	d.content[image] = diskFormat + ":" + d.content[vol]
	img.status = "active"
	return nil
}

func (d *fakeData) DeleteImage(_ context.Context, image string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.made, image)
	delete(d.content, image)
	return nil
}

func (d *fakeData) DeleteUnfinishedImage(_ context.Context, image string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if img, ok := d.made[image]; ok && img.status == "active" {
		return nil
	}
	delete(d.made, image)
	delete(d.content, image)
	return nil
}

func (d *fakeData) madeImage(id string) (fakeImage, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	img, ok := d.made[id]
	if !ok {
		return fakeImage{}, false
	}
	return *img, true
}

func (d *fakeData) Check(_ context.Context, project, container, prefix string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.content[container+"/"+prefix]; !ok {
		return fmt.Errorf("no backup %s/%s", container, prefix)
	}
	return nil
}

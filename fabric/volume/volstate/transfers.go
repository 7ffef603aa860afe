package volstate

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Transfer offers a volume of Project to whoever presents its key: the
// accepting project takes the volume (and its snapshots). Only the key's
// salted hash is kept; the key is shown once, when the transfer is made.
type Transfer struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	VolumeID  string    `json:"volume_id"`
	Project   string    `json:"project"`
	Salt      string    `json:"salt"`
	KeyHash   string    `json:"key_hash"`
	CreatedAt time.Time `json:"created_at"`
	// NoSnapshots transfers the volume alone (3.55): its snapshots stay
	// in Project.
	NoSnapshots bool `json:"no_snapshots,omitempty"`
}

// TransferTable and the transfer commands.
const (
	TransferTable     = "volume_transfers"
	CmdCreateTransfer = "volume.transfer.create"
	CmdDeleteTransfer = "volume.transfer.delete"
	CmdAcceptTransfer = "volume.transfer.accept"
)

func transferTable() store.Table {
	return store.NewTable(TransferTable, &Transfer{}, store.StringIndex("project", "Project", false),
		store.StringIndex("volume", "VolumeID", true))
}

// CreateTransferCmd offers an available volume: it is awaiting-transfer
// until the transfer is accepted or deleted.
type CreateTransferCmd struct {
	Row Transfer  `json:"row"`
	Now time.Time `json:"now"`
}

func applyCreateTransfer(tx *memdb.Txn, c CreateTransferCmd) (any, error) {
	if store.Get[Transfer](tx, TransferTable, c.Row.ID) != nil {
		return nil, store.Conflictf("transfer %s exists", c.Row.ID)
	}
	cur := store.Get[Volume](tx, VolumeTable, c.Row.VolumeID)
	if cur == nil || cur.Project != c.Row.Project {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume %s could not be found.", c.Row.VolumeID)
	}
	if cur.Status != StatusAvailable || len(cur.Attachments) > 0 {
		return nil, invalid("Invalid volume: status must be available, but it is %s.", cur.Status)
	}
	if cur.GroupID != "" {
		// A group holds its own project's volumes only.
		return nil, invalid("Invalid volume: volume %s is in group %s: remove it from the group before transferring it.", cur.ID, cur.GroupID)
	}
	v := cur.Clone()
	v.Status, v.UpdatedAt = StatusAwaitingTransfer, c.Now
	v.Revision++
	if err := tx.Insert(VolumeTable, v); err != nil {
		return nil, err
	}
	row := c.Row
	return row, tx.Insert(TransferTable, &row)
}

// DeleteTransferCmd withdraws a transfer: the volume is available again.
type DeleteTransferCmd struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func applyDeleteTransfer(tx *memdb.Txn, c DeleteTransferCmd) (any, error) {
	t := store.Get[Transfer](tx, TransferTable, c.ID)
	if t == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Transfer %s could not be found.", c.ID)
	}
	if cur := store.Get[Volume](tx, VolumeTable, t.VolumeID); cur != nil && cur.Status == StatusAwaitingTransfer {
		v := cur.Clone()
		v.Status, v.UpdatedAt = StatusAvailable, c.Now
		v.Revision++
		if err := tx.Insert(VolumeTable, v); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(TransferTable, t)
}

// AcceptTransferCmd moves a transfer's volume, and its snapshots unless
// the transfer leaves them (NoSnapshots), to
// Project; KeyHash is the presented key, hashed with the transfer's salt
// by the proposer.
type AcceptTransferCmd struct {
	ID      string    `json:"id"`
	Project string    `json:"project"`
	User    string    `json:"user"`
	KeyHash string    `json:"key_hash"`
	Now     time.Time `json:"now"`
}

func applyAcceptTransfer(tx *memdb.Txn, c AcceptTransferCmd) (any, error) {
	t := store.Get[Transfer](tx, TransferTable, c.ID)
	if t == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Transfer %s could not be found.", c.ID)
	}
	if t.KeyHash != c.KeyHash {
		return nil, invalid("Invalid auth key: Attempt to transfer %s with invalid auth key.", c.ID)
	}
	cur := store.Get[Volume](tx, VolumeTable, t.VolumeID)
	if cur == nil || cur.Status != StatusAwaitingTransfer {
		return nil, invalid("Invalid volume: the volume of transfer %s is not awaiting transfer.", c.ID)
	}
	v := cur.Clone()
	v.Project, v.User, v.Status, v.UpdatedAt = c.Project, c.User, StatusAvailable, c.Now
	v.Revision++
	if err := tx.Insert(VolumeTable, v); err != nil {
		return nil, err
	}
	gb := v.Size
	for _, s := range store.All[Snapshot](tx, SnapshotTable, "volume", v.ID) {
		if t.NoSnapshots {
			break
		}
		gb += s.Size
		n := s.Clone()
		n.Project, n.User, n.UpdatedAt = c.Project, c.User, c.Now
		n.Revision++
		if err := tx.Insert(SnapshotTable, n); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(TransferTable, t); err != nil {
		return nil, err
	}
	if err := checkQuota(tx, c.Project, gb, QuotaVolumes, QuotaGigabytes, QuotaSnapshots); err != nil {
		return nil, err
	}
	return *t, nil
}

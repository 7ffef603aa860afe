package console

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/coder/websocket"
)

// Bridge copies bytes between a websocket client and a console stream
// until either side ends or ctx does, then closes both and returns.
// Everything the stream says goes out as binary messages; text and binary
// messages from the client go into the stream as they are.
//
// It returns nil when a side ended normally (the client closed, the
// stream reached EOF, ctx ended), otherwise the error that ended it.
func Bridge(ctx context.Context, ws *websocket.Conn, stream io.ReadWriteCloser) error {
	// Messages are streamed into the socket, never held whole: a long
	// paste needs no limit.
	ws.SetReadLimit(-1)
	// Neither copy watches ctx: a cancelled context makes the websocket
	// library drop the connection without a close frame. Closing the
	// stream and the websocket below is what stops them.
	done := make(chan error, 2)
	go func() { done <- toClient(ws, stream) }()
	go func() { done <- fromClient(ws, stream) }()

	var err error
	running := 2
	status, reason := websocket.StatusNormalClosure, "console closed"
	select {
	case err = <-done:
		running--
	case <-ctx.Done():
		status, reason = websocket.StatusGoingAway, "console proxy stopping"
	}
	stream.Close()
	// The close handshake waits (at most 5s) for the client's answer,
	// which the reading goroutine takes in; either way the connection is
	// closed afterwards, which ends the writing one.
	ws.Close(status, reason)
	for ; running > 0; running-- {
		<-done
	}
	return err
}

// toClient sends what the stream says as binary messages.
func toClient(ws *websocket.Conn, stream io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := stream.Read(buf)
		if n > 0 {
			if werr := ws.Write(context.Background(), websocket.MessageBinary, buf[:n]); werr != nil {
				return fmt.Errorf("write to client: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read console: %w", err)
		}
	}
}

// fromClient writes the client's messages, text or binary, into the
// stream.
func fromClient(ws *websocket.Conn, stream io.Writer) error {
	for {
		_, r, err := ws.Reader(context.Background())
		if err != nil {
			switch websocket.CloseStatus(err) {
			case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
				return nil
			}
			return fmt.Errorf("read from client: %w", err)
		}
		if _, err := io.Copy(stream, r); err != nil {
			return fmt.Errorf("write console: %w", err)
		}
	}
}

package whatsapp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"

	"app/internal/testutil"
)

// fakeWhatsApp is WhatsApp's chat server for tests, on a local TLS
// listener: it completes the Noise handshake whatsmeow does (with a
// certificate chain of its own: whatsmeow.WACertPubKey is swapped for
// its root while it runs), logs the client in, records every IQ the
// client sends and answers it as the test says (an empty result
// otherwise). A driver's calls are then seen on the wire as WhatsApp
// would see them, and answered as WhatsApp would answer, without the
// network.
type fakeWhatsApp struct {
	t      *testing.T
	srv    *httptest.Server
	static *keys.KeyPair
	cert   []byte

	mu     sync.Mutex
	iqs    []*waBinary.Node
	acks   []*waBinary.Node                       // the client's acknowledgements
	answer func(iq *waBinary.Node) *waBinary.Node // nil, or nil returned: an empty result
	conn   *fakeConn
}

// newFakeWhatsApp starts the server and connects cli to it, logged in.
func newFakeWhatsApp(t *testing.T, cli *whatsmeow.Client) *fakeWhatsApp {
	t.Helper()
	root, intermediate := keys.NewKeyPair(), keys.NewKeyPair()
	f := &fakeWhatsApp{t: t, static: keys.NewKeyPair()}
	sign := func(kp *keys.KeyPair, details *waCert.CertChain_NoiseCertificate_Details) *waCert.CertChain_NoiseCertificate {
		raw, err := proto.Marshal(details)
		if err != nil {
			t.Fatal(err)
		}
		sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*kp.Priv), raw)
		return &waCert.CertChain_NoiseCertificate{Details: raw, Signature: sig[:]}
	}
	cert, err := proto.Marshal(&waCert.CertChain{
		Intermediate: sign(root, &waCert.CertChain_NoiseCertificate_Details{Serial: proto.Uint32(1),
			IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial), Key: intermediate.Pub[:]}),
		Leaf: sign(intermediate, &waCert.CertChain_NoiseCertificate_Details{Serial: proto.Uint32(2),
			IssuerSerial: proto.Uint32(1), Key: f.static.Pub[:]}),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.cert = cert
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)

	saved := whatsmeow.WACertPubKey
	whatsmeow.WACertPubKey = *root.Pub
	t.Cleanup(func() { whatsmeow.WACertPubKey = saved })

	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	addr := f.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	cli.SetWebsocketHTTPClient(&http.Client{Transport: tr})
	if err := cli.Connect(); err != nil {
		t.Fatalf("cannot connect to the fake WhatsApp: %v", err)
	}
	t.Cleanup(cli.Disconnect)
	testutil.Eventually(t, 10*time.Second, "logged in", func() (bool, string) { return cli.IsLoggedIn(), "" })
	return f
}

// answerWith sets how IQs are answered from now on.
func (f *fakeWhatsApp) answerWith(answer func(iq *waBinary.Node) *waBinary.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

// groupIQs are the IQs of groups (and their photos) the client sent since
// the last call.
func (f *fakeWhatsApp) groupIQs() []*waBinary.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*waBinary.Node
	for _, iq := range f.iqs {
		if ns, _ := iq.Attrs["xmlns"].(string); ns == "w:g2" || ns == "w:profile:picture" {
			out = append(out, iq)
		}
	}
	f.iqs = nil
	return out
}

// acked says whether the client acknowledged the stanza of id.
func (f *fakeWhatsApp) acked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.acks {
		if a.Attrs["id"] == id {
			return true
		}
	}
	return false
}

// send pushes a node to the client (a notification, say).
func (f *fakeWhatsApp) send(n waBinary.Node) {
	f.t.Helper()
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	if c == nil {
		f.t.Fatal("no client connected")
	}
	if err := c.send(n); err != nil {
		f.t.Fatal(err)
	}
}

// iqResult is WhatsApp's answer to iq with content.
func iqResult(iq *waBinary.Node, content ...waBinary.Node) *waBinary.Node {
	n := &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": iq.Attrs["id"], "type": "result", "from": iq.Attrs["to"]}}
	if len(content) > 0 {
		n.Content = content
	}
	return n
}

// iqError is WhatsApp's refusal of iq.
func iqError(iq *waBinary.Node, code int, text string) *waBinary.Node {
	return &waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"id": iq.Attrs["id"], "type": "error", "from": iq.Attrs["to"]},
		Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": fmt.Sprint(code), "text": text}}}}
}

func (f *fakeWhatsApp) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Errorf("fake WhatsApp: websocket: %v", err)
		return
	}
	ws.SetReadLimit(socket.FrameMaxSize)
	ctx := r.Context()
	c, err := f.handshake(ctx, ws)
	if err != nil {
		f.t.Errorf("fake WhatsApp: handshake: %v", err)
		_ = ws.Close(websocket.StatusProtocolError, "handshake")
		return
	}
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
	if err := c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{"t": "1740830400", "lid": ourLID}}); err != nil {
		return
	}
	for {
		n, err := c.read(ctx)
		if err != nil {
			return // the client went away
		}
		if n.Tag == "ack" {
			f.mu.Lock()
			f.acks = append(f.acks, n)
			f.mu.Unlock()
		}
		if n.Tag != "iq" {
			continue
		}
		f.mu.Lock()
		f.iqs = append(f.iqs, n)
		answer := f.answer
		f.mu.Unlock()
		var resp *waBinary.Node
		if answer != nil {
			resp = answer(n)
		}
		if resp == nil {
			resp = iqResult(n)
		}
		if err := c.send(*resp); err != nil {
			return
		}
	}
}

// handshake is the server's side of whatsmeow's doHandshake
// (Noise_XX_25519_AESGCM_SHA256): the client's hello, our ephemeral,
// static key and certificate chain, the client's static key and payload.
func (f *fakeWhatsApp) handshake(ctx context.Context, ws *websocket.Conn) (*fakeConn, error) {
	_, first, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if len(first) < len(socket.WAConnHeader) || string(first[:len(socket.WAConnHeader)]) != string(socket.WAConnHeader) {
		return nil, errors.New("no WA header")
	}
	header, frame := first[:len(socket.WAConnHeader)], unframe(first[len(socket.WAConnHeader):])
	var hello waWa6.HandshakeMessage
	if err := proto.Unmarshal(frame, &hello); err != nil {
		return nil, err
	}
	clientEph := hello.GetClientHello().GetEphemeral()
	n := &noiseState{}
	n.start(header)
	n.authenticate(clientEph)
	eph := keys.NewKeyPair()
	n.authenticate(eph.Pub[:])
	if err := n.mix(eph.Priv, clientEph); err != nil {
		return nil, err
	}
	static := n.encrypt(f.static.Pub[:])
	if err := n.mix(f.static.Priv, clientEph); err != nil {
		return nil, err
	}
	payload := n.encrypt(f.cert)
	out, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:], Static: static, Payload: payload}})
	if err != nil {
		return nil, err
	}
	if err := ws.Write(ctx, websocket.MessageBinary, withLength(out)); err != nil {
		return nil, err
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	var finish waWa6.HandshakeMessage
	if err := proto.Unmarshal(unframe(msg), &finish); err != nil {
		return nil, err
	}
	clientStatic, err := n.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil {
		return nil, fmt.Errorf("client static: %w", err)
	}
	if err := n.mix(eph.Priv, clientStatic); err != nil {
		return nil, err
	}
	if _, err := n.decrypt(finish.GetClientFinish().GetPayload()); err != nil {
		return nil, fmt.Errorf("client payload: %w", err)
	}
	// The client writes with the first key and reads with the second.
	fromClient, toClient, err := expandKeys(n.salt, nil)
	if err != nil {
		return nil, err
	}
	c := &fakeConn{ws: ws}
	if c.recv, err = aesGCM(fromClient); err != nil {
		return nil, err
	}
	if c.sendKey, err = aesGCM(toClient); err != nil {
		return nil, err
	}
	return c, nil
}

// fakeConn is the server's end of a logged-in noise socket.
type fakeConn struct {
	ws        *websocket.Conn
	recv      cipher.AEAD
	recvCount uint32

	mu        sync.Mutex
	sendKey   cipher.AEAD
	sendCount uint32
}

func (c *fakeConn) read(ctx context.Context) (*waBinary.Node, error) {
	_, msg, err := c.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	plain, err := c.recv.Open(nil, noiseIV(c.recvCount), unframe(msg), nil)
	c.recvCount++
	if err != nil {
		return nil, err
	}
	data, err := waBinary.Unpack(plain)
	if err != nil {
		return nil, err
	}
	return waBinary.Unmarshal(data)
}

func (c *fakeConn) send(n waBinary.Node) error {
	data, err := waBinary.Marshal(n)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sealed := c.sendKey.Seal(nil, noiseIV(c.sendCount), data, nil)
	c.sendCount++
	return c.ws.Write(context.Background(), websocket.MessageBinary, withLength(sealed))
}

// unframe strips a frame's 3-byte length (one frame a websocket message,
// as whatsmeow sends them).
func unframe(msg []byte) []byte {
	if len(msg) < socket.FrameLengthSize {
		return nil
	}
	return msg[socket.FrameLengthSize:]
}

func withLength(data []byte) []byte {
	out := make([]byte, socket.FrameLengthSize, socket.FrameLengthSize+len(data))
	out[0], out[1], out[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	return append(out, data...)
}

// noiseState mirrors whatsmeow's socket.NoiseHandshake for the other side.
type noiseState struct {
	hash, salt []byte
	key        cipher.AEAD
	counter    uint32
}

func (n *noiseState) start(header []byte) {
	n.hash = []byte(socket.NoiseStartPattern) // 32 bytes: taken as it is
	n.salt = n.hash
	var err error
	if n.key, err = aesGCM(n.hash); err != nil {
		panic(err)
	}
	n.authenticate(header)
}

func (n *noiseState) authenticate(data []byte) {
	h := sha256.Sum256(append(append([]byte{}, n.hash...), data...))
	n.hash = h[:]
}

func (n *noiseState) encrypt(plain []byte) []byte {
	sealed := n.key.Seal(nil, noiseIV(n.counter), plain, n.hash)
	n.counter++
	n.authenticate(sealed)
	return sealed
}

func (n *noiseState) decrypt(sealed []byte) ([]byte, error) {
	plain, err := n.key.Open(nil, noiseIV(n.counter), sealed, n.hash)
	n.counter++
	if err == nil {
		n.authenticate(sealed)
	}
	return plain, err
}

func (n *noiseState) mix(priv *[32]byte, pub []byte) error {
	p, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		return err
	}
	q, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return err
	}
	secret, err := p.ECDH(q)
	if err != nil {
		return err
	}
	n.counter = 0
	salt, key, err := expandKeys(n.salt, secret)
	if err != nil {
		return err
	}
	n.salt = salt
	n.key, err = aesGCM(key)
	return err
}

func expandKeys(salt, secret []byte) (first, second []byte, err error) {
	k, err := hkdf.Key(sha256.New, secret, salt, "", 64)
	if err != nil {
		return nil, nil, err
	}
	return k[:32], k[32:], nil
}

func aesGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func noiseIV(count uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], count)
	return iv
}

// xmlOf is a node as XML, with what whatsmeow draws at random (request
// ids, create keys, description ids) replaced by placeholders, so the
// same call gives the same text.
func xmlOf(n *waBinary.Node) string {
	c := normalizedNode(*n, true)
	return c.XMLString()
}

func normalizedNode(n waBinary.Node, top bool) waBinary.Node {
	attrs := waBinary.Attrs{}
	for k, v := range n.Attrs {
		attrs[k] = v
	}
	switch {
	case top && n.Tag == "iq":
		attrs["id"] = "ID"
	case n.Tag == "create":
		attrs["key"] = "KEY"
	case n.Tag == "description":
		if _, ok := attrs["id"]; ok {
			attrs["id"] = "TOPIC-ID"
		}
	}
	n.Attrs = attrs
	if kids, ok := n.Content.([]waBinary.Node); ok {
		out := make([]waBinary.Node, len(kids))
		for i, k := range kids {
			out[i] = normalizedNode(k, false)
		}
		n.Content = out
	}
	return n
}

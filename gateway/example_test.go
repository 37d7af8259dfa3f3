package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// ExampleServer embeds the gateway in a program: a handler that answers
// each message, and a clean shutdown.
func ExampleServer() {
	h := gateway.HandlerFuncs{
		Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
			// data is valid until the handler returns; Send copies it.
			_ = c.Send(op, append([]byte("you said: "), data...))
		},
	}
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0"}, h)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil { // or: go srv.ListenAndServe()
		log.Fatal(err)
	}

	client, _, err := gorilla.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		log.Fatal(err)
	}
	client.WriteMessage(gorilla.TextMessage, []byte("hello"))
	_, reply, _ := client.ReadMessage()
	fmt.Println(string(reply))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go client.ReadMessage() // lets gorilla answer the server's close frame
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	client.Close()
	// Output: you said: hello
}

// ExampleConfig_backend puts an HTTP backend behind the gateway: the
// backend names the user at connect, answers each message, and pushes to
// the user through the admin API.
func ExampleConfig_backend() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/connect":
			fmt.Fprint(w, `{"user": "ann", "topics": ["news"]}`)
		case "/message":
			fmt.Fprintf(w, "backend got %q from %s", body, r.Header.Get(gateway.HeaderUser))
		}
	}))
	defer backend.Close()

	srv, err := gateway.NewServer(gateway.Config{
		Addr:    "127.0.0.1:0",
		Backend: backend.URL,
		Admin:   "127.0.0.1:0",
	}, nil) // the backend is the application
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}

	client, _, err := gorilla.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/ws", nil)
	if err != nil {
		log.Fatal(err)
	}
	client.WriteMessage(gorilla.TextMessage, []byte("hello"))
	_, reply, _ := client.ReadMessage()
	fmt.Println(string(reply))

	push := "http://" + srv.AdminAddr().String() + "/v1/users/ann/messages"
	resp, err := http.Post(push, "text/plain", strings.NewReader("a push"))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	_, pushed, _ := client.ReadMessage()
	fmt.Println(resp.StatusCode, string(pushed))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go client.ReadMessage()
	srv.Shutdown(ctx)
	client.Close()
	// Output:
	// backend got "hello" from ann
	// 202 a push
}

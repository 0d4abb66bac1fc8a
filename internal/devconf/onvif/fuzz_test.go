package onvif

import "testing"

// FuzzONVIFAnswer feeds the answer reader what a device might send: it must return
// files or an error, never panic, and no file larger than the answer.
func FuzzONVIFAnswer(f *testing.F) {
	env := envelope("", `<tds:GetSystemBackupResponse><tds:BackupFiles><tt:Name>a</tt:Name>`+
		`<tt:Data><xop:Include href="cid:file1@vigil"/></tt:Data></tds:BackupFiles></tds:GetSystemBackupResponse>`)
	body, ct := mtom(env, "x", []string{"file1@vigil"}, [][]byte{[]byte("content")})
	f.Add(ct, body)
	f.Add("application/soap+xml", envelope("", `<tds:GetSystemBackupResponse><tds:BackupFiles><tt:Name>a</tt:Name>`+
		`<tt:Data>Y29udGVudA==</tt:Data></tds:BackupFiles></tds:GetSystemBackupResponse>`))
	f.Add("application/soap+xml", envelope("", `<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value>`+
		`</s:Subcode></s:Code><s:Reason><s:Text>no</s:Text></s:Reason></s:Fault>`))
	f.Add(`multipart/related; boundary="b"; start="<r>"`, []byte("--b\r\nContent-Id: <r>\r\n\r\n<x/>\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		msg, err := readMessage(contentType, body)
		if err != nil {
			return
		}
		var resp struct {
			Files []backupFile `xml:"BackupFiles"`
		}
		if decodeBody(msg.envelope, &resp) != nil {
			return
		}
		for _, bf := range resp.Files {
			if data, err := bf.Data.content(msg.parts); err == nil && len(data) > len(body) {
				t.Fatalf("a file of %d bytes from an answer of %d", len(data), len(body))
			}
		}
	})
}

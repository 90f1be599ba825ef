package gateway

import (
	"net/url"
	"strings"
	"testing"

	"github.com/solvequeue/solvequeue/enqueue"
)

// FuzzTwoCaptchaTask drives in.php's task building with any query a client may send: it never
// panics; a refusal is one of 2captcha's ERROR_ names with a text; a task built is one the job's
// validation can judge, and a refused job has a 2captcha name in CodeTable.
func FuzzTwoCaptchaTask(f *testing.F) {
	f.Add("method=userrecaptcha&googlekey=k&pageurl=https://a.example&version=v3&min_score=0.3&action=x&enterprise=1")
	f.Add("method=userrecaptcha&googlekey=k&pageurl=https://a.example&proxy=u:p@h:1&proxytype=SOCKS5&invisible=1")
	f.Add("method=hcaptcha&sitekey=k&pageurl=notaurl&data=rq&proxy=h:99999")
	f.Add("method=turnstile&sitekey=&pageurl=https://a.example&proxy=@:")
	f.Add("method=funcaptcha&publickey=p&pageurl=https://a.example&surl=x")
	f.Add("method=base64&body=iVBORw0KGgo=&numeric=-1&min_len=99999999999999999999")
	f.Add("method=post&body=@@")
	f.Add("method=geetest")
	f.Fuzz(func(t *testing.T, query string) {
		params, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		task, bad := twoCaptchaTask(params)
		if bad != nil {
			if !strings.HasPrefix(bad.request, "ERROR_") || bad.errorText == "" || bad.status != 0 {
				t.Fatalf("a refusal must be an ERROR_ name with a text: %+v", *bad)
			}
			return
		}
		if _, ok := task["type"].(string); !ok {
			t.Fatalf("a task without a type: %v", task)
		}
		if err := (enqueue.Job{Task: task}).Validate(); err != nil {
			if a := validationAnswer(err, task); !strings.HasPrefix(gatewayRow(a.code).TwoCaptcha, "ERROR_") {
				t.Fatalf("a refused job has no 2captcha name: %v", a)
			}
		}
	})
}

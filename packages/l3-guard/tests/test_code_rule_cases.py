"""Hand-written insecure snippets (one or more per rule family and language) must be flagged,
and their secure counterparts must not: the rules' regression suite."""

from __future__ import annotations

import pytest

from l3_guard.code_shield import CodeShield

POS = [  # (language, code)
    ("c", 'char buf[10]; sprintf(buf, "%s", name);'),
    ("c", "srand(1234);"),
    ("c", "int r = rand();"),
    ("c", "system(cmd);"),
    ("c", "EVP_EncryptInit_ex(ctx, EVP_des_cbc(), NULL, key, iv);"),
    ("c", "MD5(data, len, digest);"),
    ("c", "unsigned char iv[16] = {0};"),
    ("c", 'const char *password = "hunter2";'),
    ("c", 'int n = snprintf(buf, sizeof(buf), "%s", s);\nbuf[n] = 0;'),
    ("c", 'scanf("%s", name);'),
    ("c", "char *p = malloc(count * size);"),
    ("cpp", "std::srand(42);"),
    ("cpp", "auto_ptr<int> p(new int);"),
    ("cpp", "xmlReadFile(path, NULL, XML_PARSE_NOENT);"),
    ("cpp", "std::default_random_engine eng;"),
    ("java", "ObjectInputStream ois = new ObjectInputStream(socket.getInputStream());"),
    ("java", 'Runtime.getRuntime().exec("ls " + dir);'),
    (
        "java",
        'Statement st = conn.createStatement(); st.executeQuery("SELECT * FROM users WHERE name = \'" + name + "\'");',
    ),
    ("java", "Random r = new Random();"),
    ("java", 'response.getWriter().println(request.getParameter("q"));'),
    (
        "java",
        "SAXParserFactory spf = SAXParserFactory.newInstance();\nSAXParser p = spf.newSAXParser();",
    ),
    ("java", "XMLInputFactory f = XMLInputFactory.newInstance();"),
    ("java", "http.csrf().disable();"),
    ("java", 'MessageDigest md = MessageDigest.getInstance("SHA-1");'),
    ("java", 'SSLContext ctx = SSLContext.getInstance("SSLv3");'),
    ("javascript", "const { exec } = require('child_process');\nexec(cmd);"),
    ("javascript", "child_process.exec(`ls ${dir}`);"),
    ("javascript", "window.addEventListener('message', (e) => { doThing(e.data); });"),
    ("javascript", "el.innerHTML = userInput;"),
    ("javascript", "const b = new Buffer(10);"),
    ("javascript", "fs.readFile(path.join(base, req.query.f), cb);"),
    ("javascript", "const re = new RegExp(userInput);"),
    ("javascript", "require(moduleName);"),
    ("javascript", "if (token === req.headers.token) {}"),
    ("javascript", "fetch('http://example.com/api');"),
    ("javascript", "crypto.pseudoRandomBytes(16);"),
    ("javascript", "<div dangerouslySetInnerHTML={{__html: html}} />"),
    ("javascript", "var f = new Function('a', body);"),
    ("javascript", "setTimeout('alert(' + x + ')', 10);"),
    ("php", "$r = mysqli_query($conn, \"SELECT * FROM users WHERE id = \" . $_GET['id']);"),
    ("php", "eval($code);"),
    ("php", "$out = `ls $dir`;"),
    ("php", "unserialize($_COOKIE['data']);"),
    ("php", "include($_GET['page']);"),
    ("php", "echo md5($password);"),
    ("php", "phpinfo();"),
    ("php", "extract($_POST);"),
    ("php", "header('Location: ' . $_GET['url']);"),
    ("php", "$x = rand();"),
    ("python", "data = pickle.load(open(f, 'rb'))"),
    ("python", "yaml.load(stream)"),
    ("python", "yaml.load(stream, Loader=yaml.Loader)"),
    ("python", 'cursor.execute("SELECT * FROM t WHERE id = %s" % user_id)'),
    ("python", 'cursor.execute(f"SELECT * FROM t WHERE id = {uid}")'),
    ("python", 'query = "SELECT * FROM t WHERE name = \'" + name + "\'"\ncursor.execute(query)'),
    ("python", "subprocess.Popen(cmd, shell=True, stdout=subprocess.PIPE)"),
    ("python", "os.popen('ls ' + d)"),
    ("python", "hashlib.md5(data).hexdigest()"),
    ("python", "random.seed(42)"),
    ("python", "API_KEY = 'sk-1234567890abcdef'"),
    ("python", "eval(input())"),
    ("python", "exec(code)"),
    ("python", "requests.get(url, verify=False)"),
    ("python", "cipher = AES.new(key, AES.MODE_ECB)"),
    ("ruby", 'system("rm -rf #{path}")'),
    ("ruby", "User.where(\"name = '#{params[:name]}'\")"),
    ("ruby", "obj = Marshal.load(data)"),
    ("rust", 'let q = format!("SELECT * FROM users WHERE id = {}", id);\nconn.execute(&q, [])?;'),
    ("rust", "let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build()?;"),
    ("rust", "let mut h = Md5::new();"),
    (
        "csharp",
        'var cmd = new SqlCommand("SELECT * FROM Users WHERE Name = \'" + name + "\'", conn);',
    ),
    ("csharp", "var bf = new BinaryFormatter();"),
    ("csharp", "Process.Start(userCmd);"),
    ("csharp", "ServicePointManager.ServerCertificateValidationCallback += (s, c, ch, e) => true;"),
    ("csharp", "var des = DES.Create();"),
    ("csharp", "var r = new Random();"),
    ("swift", "let hash = CC_MD5(ptr, len, &digest)"),
    ("swift", "kSecAttrAccessibleAlways"),
    ("objective_c", "[NSKeyedUnarchiver unarchiveObjectWithData:data];"),
    ("objective_c", "strcpy(dst, src);"),
    ("xml", '<application android:allowBackup="true" />'),
    ("xml", '<activity android:name=".Main" android:exported="true" />'),
    ("php", "$cmd = $_GET['c'];\n$x = 1;\nsystem($cmd);"),
    ("php", "$name = $_GET['n'];\necho 'Hello ' . $name;"),
    ("php", "$f = $_GET['f'];\ninclude($f);"),
    (
        "java",
        'String name = request.getParameter("name");\nresponse.getWriter().write("Hi " + name);',
    ),
    ("java", 'String u = req.getParameter("u");\nURL url = new URL(u);'),
    ("java", 'String q = "SELECT * FROM t WHERE n = " + n;\nstmt.executeQuery(q);'),
    ("java", 'String c = request.getParameter("c");\nRuntime.getRuntime().exec(c);'),
]
NEG = [  # (language, code)
    ("c", 'snprintf(buf, sizeof(buf), "%s", name);'),
    ("c", "strncpy(dst, src, n);"),
    ("c", "fgets(buf, sizeof buf, stdin);"),
    ("c", "EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv);"),
    ("c", "char *p = malloc(sizeof(int) * 10);"),
    ("java", "SecureRandom r = new SecureRandom();"),
    ("java", 'PreparedStatement ps = conn.prepareStatement("SELECT * FROM users WHERE name = ?");'),
    ("java", 'MessageDigest md = MessageDigest.getInstance("SHA-256");'),
    ("javascript", "const { execFile } = require('child_process');\nexecFile('ls', ['-la']);"),
    ("javascript", "fs.readFileSync('./config.json');"),
    ("javascript", "const re = new RegExp('^[a-z]+$');"),
    ("javascript", "el.textContent = userInput;"),
    ("javascript", "fetch('https://example.com');"),
    ("javascript", "const x = require('express');"),
    ("javascript", "setTimeout(() => run(), 100);"),
    ("php", "$stmt = $pdo->prepare('SELECT * FROM users WHERE id = ?');"),
    ("php", "echo htmlspecialchars($_GET['q'], ENT_QUOTES);"),
    ("php", "$h = password_hash($password, PASSWORD_DEFAULT);"),
    ("php", "$x = random_int(1, 10);"),
    ("python", "yaml.safe_load(stream)"),
    ("python", "yaml.load(stream, Loader=yaml.SafeLoader)"),
    ("python", "cursor.execute('SELECT * FROM t WHERE id = %s', (uid,))"),
    ("python", "subprocess.run(['ls', '-la'], check=True)"),
    ("python", "hashlib.sha256(data).hexdigest()"),
    ("python", "password = os.environ['DB_PASSWORD']"),
    ("python", "x = ast.literal_eval(s)"),
    ("python", "model.eval()"),
    ("python", "secrets.token_hex(16)"),
    ("python", "requests.get(url, timeout=5)"),
    ("ruby", "system('ls', '-la')"),
    ("ruby", "User.where(name: params[:name])"),
    ("rust", "let h = Sha256::new();"),
    ("rust", 'let rows = conn.query("SELECT * FROM users WHERE id = $1", &[&id])?;'),
    ("csharp", 'var cmd = new SqlCommand("SELECT * FROM Users WHERE Name = @name", conn);'),
    ("csharp", "var sha = SHA256.Create();"),
    ("swift", "let digest = SHA256.hash(data: data)"),
    ("xml", '<application android:allowBackup="false" />'),
    ("php", "$name = $_GET['n'];\necho htmlspecialchars($name);"),
    (
        "java",
        'String name = request.getParameter("name");\nresponse.getWriter().write(Encode.forHtml(name));',
    ),
]


@pytest.fixture(scope="module")
def shield() -> CodeShield:
    return CodeShield()


@pytest.mark.parametrize(("lang", "code"), POS)
def test_insecure_snippet_is_flagged(shield, lang, code):
    res = shield.scan(code, lang)
    assert res.is_insecure and res.issues


@pytest.mark.parametrize(("lang", "code"), NEG)
def test_secure_snippet_is_not_flagged(shield, lang, code):
    res = shield.scan(code, lang)
    assert not res.is_insecure, [i.rule_id for i in res.issues]

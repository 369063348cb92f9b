"""Writes conversations.jsonl, the bundled demo dataset, from the hand-written conversations below.

Two people talk with an assistant: Sam, a backend engineer who writes terse lowercase
messages, and Margaret, a secondary-school teacher who writes warm, long sentences.
Run it again after editing: `python resources/demo/make_demo.py`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

U, A, S = "user", "assistant", "system"

SAM = [
    (
        "migration hangs",
        [
            (U, "alembic migration hangs on the orders table. 40M rows. adding a nullable column. why"),
            (
                A,
                "Adding a nullable column without a default is a metadata-only change in PostgreSQL 11+, so the column itself should be instant. The hang is almost certainly a lock wait: `ALTER TABLE` needs an ACCESS EXCLUSIVE lock, and it queues behind any long-running transaction that touches `orders`. Everything after it then queues behind the ALTER.\n\nCheck what holds the lock:\n\n```sql\nSELECT pid, state, xact_start, query\nFROM pg_stat_activity\nWHERE datname = current_database()\nORDER BY xact_start;\n```",
            ),
            (U, "yep. analytics job holding a txn open for 2h. killed it, migration done in 80ms"),
            (
                A,
                "That's the classic one. To stop it happening again, set a `lock_timeout` in the migration so it fails fast instead of blocking production traffic:\n\n```python\ndef upgrade():\n    op.execute(\"SET lock_timeout = '5s'\")\n    op.add_column('orders', sa.Column('region', sa.Text(), nullable=True))\n```",
            ),
            (U, "nice. thx"),
        ],
    ),
    (
        "flaky test",
        [
            (U, "test_checkout passes locally, fails in ci maybe 1 in 5. no idea"),
            (
                A,
                "Intermittent failures that only show up in CI usually come from one of three things: test order (shared state between tests), timing (a sleep or timeout that is too tight on a slower runner), or parallelism (pytest-xdist running tests that share a database or a port). What does the failure look like?",
            ),
            (U, "AssertionError: assert 2 == 1. counting orders for the user"),
            (
                A,
                "An extra order means another test left one behind for the same user. If CI runs with `-n auto` and both tests create `user_id=1`, they see each other's rows. Use a unique user per test, or wrap each test in a transaction that rolls back:\n\n```python\n@pytest.fixture\ndef db_session(engine):\n    connection = engine.connect()\n    transaction = connection.begin()\n    session = Session(bind=connection)\n    yield session\n    session.close()\n    transaction.rollback()\n    connection.close()\n```",
            ),
            (U, "we do run xdist. fixture fixed it. 50 runs green"),
        ],
    ),
    (
        "redis vs memcached",
        [
            (U, "redis vs memcached for session cache. 5k rps. which"),
            (
                A,
                "For plain session caching at 5k requests per second either will be idle. The difference is in what you get around it: Redis has persistence, replication, TTL per key and data structures, whereas memcached is a pure LRU cache that is slightly simpler to operate and multi-threaded. If you already run Redis for anything else, use it; one fewer moving part is worth more than memcached's edge.",
            ),
            (U, "already have redis for celery. redis it is"),
        ],
    ),
    (
        "off by one",
        [
            (
                U,
                "pagination returns the last item twice\n\n```python\ndef page(items, n, size):\n    start = n * size\n    return items[start - 1:start + size]\n```",
            ),
            (
                A,
                "The slice starts one element early: `start - 1` pulls in the last item of the previous page. Python slices are already half-open, so `items[start:start + size]` gives exactly `size` items with no overlap.",
            ),
            (U, "ugh. off by one. fixed"),
        ],
    ),
    (
        "k8s rollout plan",
        [
            (U, "need a plan for moving the api from ec2 to k8s. 3 services, postgres stays on rds"),
            (
                A,
                "Here's the plan I'd follow, in phases so you can stop at any point with a working system:\n\n1. Containerise each service and run the images on the existing EC2 hosts first. That separates packaging problems from orchestration problems.\n2. Stand up the cluster with one service (the least critical one) behind the same load balancer, with weighted routing at 10%.\n3. Move config and secrets to the cluster's secret store; keep RDS security groups open to both.\n4. Shift traffic per service: 10%, 50%, 100%, watching error rate and p99.\n5. Decommission EC2 after a week at 100% with no rollbacks.\n\nThe next step is to pick the first service. Which one has the fewest dependencies?",
            ),
            (U, "notifications. stateless, only talks to sqs"),
            (
                A,
                "Good first candidate. Start with its Dockerfile and a readiness probe that checks the SQS connection, so the rollout waits for it.",
            ),
            (U, "ok. milestone 1 by friday then"),
        ],
    ),
    (
        "what do you mean idempotent",
        [
            (U, "you said the webhook handler must be idempotent. what do you mean exactly"),
            (
                A,
                "I mean that processing the same webhook twice must leave the system in the same state as processing it once. Payment providers retry deliveries when they don't get a 2xx in time, so duplicates are normal. The usual way is to store the event id with a unique constraint and skip events you've already seen:\n\n```python\ntry:\n    db.execute(\"INSERT INTO processed_events(id) VALUES (%s)\", [event.id])\nexcept UniqueViolation:\n    return 200  # already handled\n```",
            ),
            (U, "got it. so the insert and the side effect in the same txn"),
            (A, "Exactly: same transaction, so a crash between them can't record the event without doing the work."),
        ],
    ),
    (
        "regex email",
        [
            (U, "write a regex that validates email"),
            (
                A,
                'A regex can\'t fully validate an email address; the real grammar is huge and the only true check is sending a message. A practical filter that rejects obvious typos:\n\n```python\nimport re\nEMAIL = re.compile(r"^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$")\n```\n\nThen confirm ownership with a verification link.',
            ),
            (U, "fine. good enough for signup form"),
        ],
    ),
    (
        "docker image size",
        [
            (U, "docker image is 1.9gb. python app. how do i shrink it"),
            (
                A,
                "A few things usually account for most of it:\n\n- Build on `python:3.12-slim` instead of the full image.\n- Use a multi-stage build: compile wheels in a builder stage, copy only the installed packages into the final stage.\n- Add `--no-cache-dir` to pip and clean apt lists in the same layer.\n\n```dockerfile\nFROM python:3.12-slim AS build\nCOPY requirements.txt .\nRUN pip wheel --no-cache-dir -r requirements.txt -w /wheels\n\nFROM python:3.12-slim\nCOPY --from=build /wheels /wheels\nRUN pip install --no-cache-dir /wheels/* && rm -rf /wheels\nCOPY app/ /app\n```",
            ),
            (U, "down to 240mb. torch was the rest, switched to cpu wheel"),
            (A, "That's a big win; the CUDA wheels alone are over a gigabyte."),
            (U, "yeah"),
        ],
    ),
    (
        "segfault numpy",
        [
            (U, "python segfaults in prod on np.dot with big arrays. works on laptop"),
            (
                A,
                "A segfault inside `np.dot` points at the BLAS library rather than your code. Different BLAS builds (OpenBLAS vs MKL) and thread counts behave differently, and some OpenBLAS versions crash when the thread stack is too small inside containers. Two quick experiments: run with `OPENBLAS_NUM_THREADS=1`, and print `np.show_config()` on both machines to compare.",
            ),
            (U, "OPENBLAS_NUM_THREADS=1 fixes it. prod has older openblas"),
            (
                A,
                "Then upgrading numpy (which bundles a newer OpenBLAS in its wheel) should fix it properly, and you can drop the env var afterwards.",
            ),
            (U, "upgraded. no crash in 24h"),
            (U, "looking back i should have checked show_config first. would have saved a day"),
        ],
    ),
    (
        "git rebase mess",
        [
            (U, "rebased onto main, now half my commits are gone"),
            (
                A,
                "They're almost certainly not gone. Git keeps the previous tip of your branch in the reflog. Run `git reflog`, find the entry just before `rebase (start)`, and reset to it:\n\n```bash\ngit reflog\ngit reset --hard HEAD@{5}   # the entry before the rebase\n```",
            ),
            (U, "HEAD@{7} had them. back. thanks"),
        ],
    ),
    (
        "cache ideas",
        [
            (U, "product page p99 is 1.8s. mostly 6 db queries. ideas?"),
            (
                A,
                "A few options, roughly from cheapest to most involved:\n\n- Batch the six queries into one or two with joins, or run them concurrently if they're independent.\n- Cache the rendered fragment for anonymous users for 30-60 seconds.\n- Add a read replica for the catalogue queries.\n- What if you precomputed the product page JSON on write (price or stock change) and served it from Redis?\n\nThe last one is the biggest change but makes reads constant-time.",
            ),
            (U, "could also just add the missing index on variants.product_id. checked, seq scan"),
            (A, "Yes, start there. A sequential scan on variants would explain most of the latency by itself."),
            (U, "index added. p99 320ms. precompute idea goes on the backlog"),
        ],
    ),
    (
        "typescript any",
        [
            (U, "ts: how do i type a function that returns whatever the callback returns"),
            (
                A,
                "Use a generic for the return type so TypeScript infers it from the callback:\n\n```typescript\nfunction withRetry<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {\n  return fn().catch((err) => {\n    if (attempts <= 1) throw err;\n    return withRetry(fn, attempts - 1);\n  });\n}\n```\n\n`withRetry(() => fetchUser(id))` is then typed as `Promise<User>`.",
            ),
            (U, "perfect"),
        ],
    ),
    (
        "wrong port",
        [
            (U, "connection refused on localhost:5433"),
            (A, "Is PostgreSQL listening on 5433? The default port is 5432; check with `ss -ltnp | grep postgres`."),
            (U, "no, that's wrong. we run two clusters, 5433 is the second one on purpose"),
            (
                A,
                "My mistake, thanks for the correction. Then check that the second cluster is running (`pg_lsclusters` on Debian) and that its `postgresql.conf` has `port = 5433` and `listen_addresses` includes localhost.",
            ),
            (U, "cluster was down after the upgrade. started it. ok now"),
        ],
    ),
    (
        "async vs threads",
        [
            (U, "asyncio vs threads for calling 200 http apis in parallel"),
            (
                A,
                "For I/O-bound fan-out like this, asyncio with `httpx.AsyncClient` is lighter than threads: one thread, no lock contention, and easy concurrency limits with a semaphore. Threads work too (a `ThreadPoolExecutor` with 20-50 workers) and are simpler if the rest of the code is synchronous. Rather than choosing on performance, choose on the code around it.",
            ),
            (U, "rest is sync django. threads then"),
        ],
    ),
    (
        "cron timezone",
        [
            (U, "cron job runs at 3am utc but should be 3am berlin"),
            (
                A,
                "Plain cron uses the system timezone. With cronie you can put `CRON_TZ=Europe/Berlin` at the top of the crontab; with Kubernetes CronJobs, set `spec.timeZone: Europe/Berlin` (stable since 1.27). Either way, daylight saving is handled for you.",
            ),
            (U, "k8s. timeZone field works"),
        ],
    ),
    (
        "retro",
        [
            (U, "writing the retro for the outage. we lost 40 min of orders"),
            (
                A,
                "A useful structure is: timeline, impact, root cause, what went well, what didn't, and action items with owners. Keep it blameless: describe decisions with the information people had at the time.",
            ),
            (U, "root cause: disk full on the queue broker. alert existed but went to an old channel"),
            (
                A,
                "Then there are two separate lessons: capacity (the disk filled) and detection (the alert went nowhere). The second is the more important one to fix, because it hides every future problem too.",
            ),
            (U, "i realize we never audit alert routing. adding quarterly check to the runbook"),
            (U, "also in hindsight the broker should've had a retention limit. adding that too"),
        ],
    ),
    (
        "json logging",
        [
            (U, "set up structured json logging for fastapi. uvicorn too"),
            (
                A,
                'Configure the root logger with a JSON formatter and let uvicorn\'s loggers propagate to it:\n\n```python\nimport logging, json\n\nclass JsonFormatter(logging.Formatter):\n    def format(self, record):\n        return json.dumps({\n            "level": record.levelname,\n            "logger": record.name,\n            "message": record.getMessage(),\n        })\n\nhandler = logging.StreamHandler()\nhandler.setFormatter(JsonFormatter())\nlogging.basicConfig(level=logging.INFO, handlers=[handler])\nfor name in ("uvicorn", "uvicorn.access", "uvicorn.error"):\n    logging.getLogger(name).handlers = []\n    logging.getLogger(name).propagate = True\n```',
            ),
            (U, "works. access logs now json too"),
        ],
    ),
    (
        "memory leak",
        [
            (U, "worker rss grows 50mb/hour until oom. python 3.11 celery"),
            (
                A,
                "Start by finding out whether it is Python objects or native memory. `tracemalloc` shows Python allocations; if its totals stay flat while RSS grows, the leak is in a C extension or in fragmentation. Take two snapshots an hour apart and compare the top lines:\n\n```python\nimport tracemalloc\ntracemalloc.start(25)\n# ... later\nsnapshot = tracemalloc.take_snapshot()\nfor stat in snapshot.compare_to(previous, 'lineno')[:10]:\n    print(stat)\n```",
            ),
            (U, "top line is a module level dict in our pricing code. never evicted"),
            (
                A,
                "That's it, then: an unbounded module-level cache. Replace it with `functools.lru_cache(maxsize=...)` or a TTL cache so old entries are dropped.",
            ),
            (U, "lru_cache(4096). flat for 6h now"),
            (
                A,
                "Good. As a safety net you can also set `worker_max_tasks_per_child` so a worker is recycled even if another leak appears.",
            ),
            (U, "added, 1000"),
        ],
    ),
    (
        "sql window",
        [
            (U, "sql: latest order per customer"),
            (
                A,
                "In PostgreSQL the shortest way is `DISTINCT ON`:\n\n```sql\nSELECT DISTINCT ON (customer_id) *\nFROM orders\nORDER BY customer_id, created_at DESC;\n```\n\nA window function works in every database:\n\n```sql\nSELECT * FROM (\n  SELECT o.*, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn\n  FROM orders o\n) t WHERE rn = 1;\n```",
            ),
            (U, "distinct on. ty"),
        ],
    ),
    (
        "dataloader deadlock",
        [
            (U, "pytorch dataloader hangs at epoch 2 with num_workers=8"),
            (
                A,
                "Hangs at the start of a later epoch often come from workers that can't be re-created: a dataset holding an open file handle, a database connection or a lock that doesn't survive fork. Does it hang with `persistent_workers=True`, and does it hang with `num_workers=0`?",
            ),
            (U, "num_workers=0 fine. persistent_workers=True also fine"),
            (
                A,
                "Then the workers start correctly once and break when forked again. The usual culprit is an object opened in `__init__` of the dataset (an HDF5 file, an LMDB env). Open it lazily in the worker instead:\n\n```python\nclass Shards(Dataset):\n    def __init__(self, path):\n        self.path = path\n        self.env = None\n\n    def __getitem__(self, index):\n        if self.env is None:\n            self.env = lmdb.open(self.path, readonly=True, lock=False)\n        ...\n```",
            ),
            (U, "was lmdb in __init__. lazy open fixed it"),
        ],
    ),
    (
        "ci speedup",
        [
            (U, "ci takes 24 min. want under 10. where do i start"),
            (
                A,
                "Measure first: which jobs are on the critical path, and how long each step takes. Typical wins, in order: cache dependencies (pip/npm), split the test suite across parallel runners, run lint and type checks in parallel rather than in sequence, and skip work for unchanged paths.",
            ),
            (U, "deps install is 6 min. tests 14 single runner"),
            (
                A,
                "Then caching pip and splitting tests four ways would take you to roughly 2 + 14/4, so around 6-7 minutes with overhead.",
            ),
            (U, "step one cache, step two pytest-split. doing cache today"),
            (U, "cache done: 24 -> 18"),
            (U, "split done: 18 -> 8. nice"),
        ],
    ),
    (
        "terraform state",
        [
            (U, "terraform wants to destroy and recreate the rds instance after renaming the resource"),
            (
                A,
                "Terraform sees a new address and an old one, so it plans a destroy and a create. Tell it the resource moved instead. With Terraform 1.1+ add a `moved` block:\n\n```hcl\nmoved {\n  from = aws_db_instance.main\n  to   = aws_db_instance.primary\n}\n```\n\nThe plan should then show no changes.",
            ),
            (U, "no changes. phew"),
        ],
    ),
    (
        "ls hidden",
        [
            (U, "flag for ls to show dotfiles"),
            (A, "`ls -a` shows hidden files; `ls -A` does the same but leaves out `.` and `..`."),
        ],
    ),
    (
        "k8s followup",
        [
            (U, "notifications service on k8s at 100% for a week. no rollbacks"),
            (
                A,
                "Congratulations, that's the riskiest step done: the pipeline, secrets and routing all work end to end. What's next on the list?",
            ),
            (U, "search service. it has a 4gb in-memory index, loads for 3 min on start"),
            (
                A,
                "That changes the rollout mechanics. With a 3-minute warm-up you want a startup probe with a generous threshold so Kubernetes doesn't kill the pod while it loads, and `maxUnavailable: 0` so old pods keep serving until new ones are ready:\n\n```yaml\nstartupProbe:\n  httpGet: {path: /ready, port: 8080}\n  failureThreshold: 40\n  periodSeconds: 5\nstrategy:\n  rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n```",
            ),
            (U, "memory limits? index is 4gb, process peaks at 5.5 while loading"),
            (
                A,
                "Set the request near steady state and the limit above the loading peak, say request 4.5Gi and limit 6Gi, otherwise the OOM killer will restart it during warm-up.",
            ),
            (U, "ok. what about the index file itself. baked into image or volume"),
            (
                A,
                "A volume, or a download from object storage at start. Baking 4 GB into the image makes every deploy pull it again and slows node scale-up. An init container that syncs the index from S3 onto an emptyDir keeps the image small.",
            ),
            (U, "init container + emptyDir. going with that"),
            (U, "first deploy: startup probe killed it anyway at 3m20"),
            (
                A,
                "40 failures times 5 seconds is 200 seconds, which is exactly where it died. Raise `failureThreshold` to 60 to leave headroom for slower nodes.",
            ),
            (U, "60 works. up in 3m40"),
        ],
    ),
]

MARGARET = [
    (
        "gentler word",
        [
            (
                U,
                "I'm writing end-of-term reports, and I would love a gentler phrase than 'failed to complete' for a student who simply ran out of time on her coursework, because she worked so hard and I don't want the report to sound like a verdict.",
            ),
            (
                A,
                "You could write 'has not yet completed', which is accurate and points forward: 'Amira has not yet completed her coursework, but the sections she has finished show careful research and real originality.'",
            ),
        ],
    ),
    (
        "photosynthesis lesson",
        [
            (
                U,
                "Good morning! I'm putting together a lesson on photosynthesis for my Year 7 class, and I'd love your help thinking through how to explain the light-dependent reactions in a way that feels approachable rather than intimidating. Many of them have told me that biology feels like memorising a list of strange words.",
            ),
            (
                A,
                "Good morning! A story tends to work better than a list for this age. You could describe the chloroplast as a small solar-powered factory: light is the energy that arrives at the loading dock, water is split to release oxygen as a by-product, and the energy is stored in two 'rechargeable batteries' (ATP and NADPH) that the second part of the factory uses to build sugar. The reason this works is that every strange word gets a job in the story before it gets a name.",
            ),
            (
                U,
                "Oh, I really like the factory idea, and I think my students will enjoy it too, especially if I let them draw their own factory floor plans. Could you suggest a short practical activity that would let them see oxygen being produced, something we could do with the equipment a normal school lab has?",
            ),
            (
                A,
                "The pondweed experiment is ideal: put a sprig of Elodea upside down in a test tube of water with a pinch of sodium bicarbonate, shine a lamp on it, and count the bubbles per minute. Then move the lamp further away and count again. The students see oxygen appear, and they discover for themselves that less light means fewer bubbles, which sets up the idea of a limiting factor beautifully.",
            ),
            (
                U,
                "That is perfect, thank you so much; I had forgotten all about pondweed, and it will give the quieter students something concrete to count and record while the others are chatting about factories.",
            ),
        ],
    ),
    (
        "parents evening",
        [
            (
                U,
                "I have parents' evening next Thursday and one conversation I'm quietly dreading: a lovely, bright boy whose marks have dropped sharply since October, and I suspect something is going on at home. How would you suggest I open the conversation so that his mother doesn't feel judged?",
            ),
            (
                A,
                "Opening with something specific and genuine that you value in him sets the tone: 'I really enjoy having Tom in class; his questions often take the lesson somewhere better.' Then describe what you have noticed rather than what you conclude: 'Since October his homework has been coming in less often, and he seems more tired in the mornings.' Finish with an open question, such as 'Have you noticed anything similar at home?', which invites her to share without feeling accused.",
            ),
            (
                U,
                "That's very helpful, and it feels much kinder than the way I had been rehearsing it in my head, which was rather more about marks and deadlines. I wonder whether I should also mention that the school counsellor is available, or whether that might feel like too much at a first conversation.",
            ),
            (
                A,
                "You can mention it lightly, as one of several ways the school can help, rather than as a recommendation: 'If it would ever be useful, Mrs Patel is here on Tuesdays and Thursdays, and lots of students find it helpful to talk to her.' That leaves the door open without suggesting you think something is wrong.",
            ),
            (U, "Thank you, that makes sense, and I feel calmer about the whole evening now."),
        ],
    ),
    (
        "marking rubric",
        [
            (
                U,
                "Could you help me write a simple marking rubric for a persuasive letter, aimed at twelve-year-olds, with four levels and three criteria? I would like the language to be something the students themselves can read and use to assess their own drafts.",
            ),
            (
                A,
                "Here is a rubric in student-friendly language, with three criteria and four levels:\n\n| | Beginning | Developing | Secure | Excellent |\n|---|---|---|---|---|\n| My argument | I say what I want. | I give one reason. | I give three reasons with examples. | My reasons build on each other and I answer an objection. |\n| My audience | I forget who I am writing to. | I greet them politely. | I choose words that suit them. | I make them feel I understand their point of view. |\n| My writing | It is hard to follow. | I use paragraphs. | I link paragraphs with connectives. | My paragraphs flow and my ending calls for action. |\n\nStudents can highlight the box that best describes their draft, then aim for the box to its right.",
            ),
            (
                U,
                "This is wonderful, and I love that it is written in the first person, because it makes the rubric feel like it belongs to them rather than to me.",
            ),
        ],
    ),
    (
        "fractions confusion",
        [
            (
                U,
                "One of my students asked me today why dividing by a half makes a number bigger, and although I know the rule, I realised I couldn't give her an explanation that truly satisfied her. How would you explain it to an eleven-year-old?",
            ),
            (
                A,
                "Ask her how many halves fit into 3. Dividing asks 'how many of these fit into that?', so 3 ÷ ½ means 'how many halves are there in 3 pizzas?' Each pizza has two halves, so there are six. The answer is bigger because the pieces we are counting are smaller than one whole. Once she sees division as counting pieces, the 'flip and multiply' rule becomes a shortcut rather than a mystery.",
            ),
            (
                U,
                "Do you mean that I should avoid teaching the rule altogether until the picture makes sense to her, or that the two can be introduced together?",
            ),
            (
                A,
                "To clarify: start with the picture and a few examples she can draw (3 ÷ ½, 2 ÷ ¼, 1 ÷ ⅓), let her notice the pattern herself, and only then name the rule as the pattern she found. The rule then feels like her discovery.",
            ),
            (
                U,
                "That is a lovely approach, and I think she will be delighted to 'discover' a rule that her older brother has been showing off about.",
            ),
        ],
    ),
    (
        "school trip planning",
        [
            (
                U,
                "We are taking sixty Year 8 students to the Natural History Museum in March, and I have been asked to coordinate the whole trip for the first time. Could you help me think through a plan, from the first letters home to the day itself, so that nothing important gets forgotten?",
            ),
            (
                A,
                "Here's a plan in stages, working backwards from the day:\n\n1. Eight weeks before: confirm the booking, the coach, and the staff ratio (1:10 is typical, so six adults plus a first-aider).\n2. Seven weeks before: send the letter home with costs, consent form and medical questionnaire; set a return deadline.\n3. Four weeks before: complete the risk assessment and get it signed off; collect medical needs into one sheet.\n4. Two weeks before: assign students to groups and staff, and prepare a worksheet that gives the visit a purpose.\n5. The day before: print registers, emergency contacts and the coach company's number.\n6. On the day: register at school, on the coach, on arrival and before leaving.\n\nWhich of these would you like to work on first?",
            ),
            (
                U,
                "The letter home, I think, because that sets everything else moving and I would like it to sound friendly rather than bureaucratic.",
            ),
            (
                A,
                "Dear Parents and Carers,\n\nWe are delighted to invite Year 8 to a day at the Natural History Museum on Thursday 19 March, as part of their topic on evolution and adaptation. Students will explore the galleries in small groups with a member of staff and complete a short investigation sheet.\n\nThe cost is £14, which covers the coach. Please return the attached consent form and medical questionnaire by Friday 6 February.\n\nWith best wishes,\nMrs M. Hughes",
            ),
            (
                U,
                "That strikes exactly the right tone, thank you. One question about the risk assessment: should it cover the journey as well as the museum itself, or does the coach company's own assessment cover that part?",
            ),
            (
                A,
                "Your assessment should cover the journey from the school's side: supervision on the coach, seat belts, headcounts, what happens if a student is unwell or the coach breaks down. The coach company's documents cover the vehicle and the driver, and you can attach them as evidence, but they don't replace your own plan for the students.",
            ),
            (
                U,
                "I see, that makes sense. And what would you suggest for the worksheet, so that it gives the visit a purpose without turning it into a dreary form-filling exercise?",
            ),
            (
                A,
                "Give each group one question to investigate rather than a list to fill in, for example: 'Which three animals in the museum are best adapted to extreme cold, and what evidence would you show to convince us?' Groups collect sketches and photos, and present their case back in school. It keeps them moving around the galleries with a reason to look closely.",
            ),
            (
                U,
                "Oh, I love that, and it gives us a lovely follow-up lesson too. I'll put that on the to-do list for week four.",
            ),
        ],
    ),
    (
        "essay feedback",
        [
            (
                U,
                "I have thirty essays to mark this weekend, and I have noticed that my written feedback tends to become shorter and less useful as I get tired. Do you have any suggestions for giving feedback that is both kind and genuinely helpful, without spending twenty minutes on every single essay?",
            ),
            (
                A,
                "A few approaches that teachers find sustainable:\n\n- Read three or four essays first without marking, and note the three most common issues; write a short whole-class feedback sheet on those.\n- On each essay, write one 'what went well' and one 'even better if', tied to the rubric.\n- Use codes in the margin (for example, E for 'add evidence') that map to the feedback sheet, so students do the work of finding the fix.\n\nThe main idea is that the common feedback is written once, and your individual comments go where they matter most.",
            ),
            (
                U,
                "The margin codes are a clever idea, although I wonder whether some students will simply ignore them unless there is a reason to act on them in class.",
            ),
            (
                A,
                "That is a real risk, and the usual remedy is to give ten minutes of the next lesson to 'feedback time': students find each code, look it up on the sheet, and rewrite one paragraph. When the rewrite is expected, the codes get read.",
            ),
            (U, "Yes, that would work well with my class; thank you for thinking it through with me."),
        ],
    ),
    (
        "correcting a date",
        [
            (
                U,
                "In my history lesson plan I've written that the Battle of Hastings took place in 1067; could you help me turn the key events leading up to it into a simple timeline for the board?",
            ),
            (
                A,
                "Gladly, though one correction first: the Battle of Hastings was fought on 14 October 1066, not 1067. A simple timeline:\n\n- January 1066: Edward the Confessor dies; Harold Godwinson is crowned.\n- September 1066: Harald Hardrada invades in the north; Harold defeats him at Stamford Bridge.\n- 28 September 1066: William of Normandy lands at Pevensey.\n- 14 October 1066: Battle of Hastings; Harold is killed.\n- 25 December 1066: William is crowned in Westminster Abbey.",
            ),
            (
                U,
                "Oh goodness, you're quite right, and I'm grateful you caught it before thirty eleven-year-olds did; that would have been a long lesson.",
            ),
        ],
    ),
    (
        "reading for reluctant readers",
        [
            (
                U,
                "I'm looking for book ideas for a small group of reluctant readers in Year 9, mostly boys who tell me that reading is 'boring' and who would rather be playing football or video games. What might tempt them?",
            ),
            (
                A,
                "Some ideas that often work with that group:\n\n- Short, fast thrillers: Alex Rider, or the Cherub series.\n- Graphic novels, which count as reading and build stamina: 'Maus' for older readers, 'Amulet' for lighter fare.\n- Sports fiction and true stories: 'Booked' by Kwame Alexander is a novel in verse about football.\n- Books that tie into games they already love, such as novels set in familiar game worlds.\n\nAnother option is to let them choose from a short shelf you've curated, so the choice is real but every option is a good one.",
            ),
            (
                U,
                "Booked sounds like exactly the right bridge, and I love the idea of a curated shelf; it gives them control without leaving them to wander the library looking lost.",
            ),
        ],
    ),
    (
        "difference between weather and climate",
        [
            (
                U,
                "What is the clearest way to explain the difference between weather and climate to a class of ten-year-olds?",
            ),
            (
                A,
                "Weather is what you get today; climate is what you expect over many years. One comparison children like: weather is your mood today, while climate is your personality. You might be grumpy on a Monday, but that doesn't mean you are a grumpy person.",
            ),
            (U, "That is brilliant, and I can already imagine the discussion it will start."),
        ],
    ),
    (
        "staff meeting reflection",
        [
            (
                U,
                "Our staff meeting today was about behaviour policy, and I came away feeling unsettled, because I realised that I often give second and third chances that I don't give to every student equally. I've been thinking about it all evening.",
            ),
            (
                A,
                "It says a lot that you noticed it; many teachers never do. Giving extra chances usually comes from care, and often we extend it to students whose difficulties we understand best. One way to make it fairer is to decide in advance what a second chance looks like (a quiet word, a reset, a choice) so it's available to everyone, not only to the students we feel closest to.",
            ),
            (
                U,
                "Looking back over this term, I think the students who got the fewest second chances were the quiet ones who rarely needed them, and the ones who needed them most were the ones I found hardest to like, which is an uncomfortable thing to admit.",
            ),
            (
                A,
                "It's uncomfortable, and it's also very human. Writing your intended response down, and noticing when you depart from it, is a practical way to keep it in check. You might also try two minutes of a positive conversation with each of the students you find hardest, at times when nothing is wrong; it often changes how both of you see each other.",
            ),
            (
                U,
                "Thank you; that is a kind and practical suggestion, and I'm going to try it with two students next week.",
            ),
        ],
    ),
    (
        "group work roles",
        [
            (
                U,
                "Whenever I set group work, one student does everything while the others watch, and I would like some ways of structuring it so that everyone genuinely contributes. Can you brainstorm a few approaches with me?",
            ),
            (
                A,
                "Here are a few approaches to mix and match:\n\n- Give each member a role card (reader, recorder, questioner, reporter) and rotate roles each lesson.\n- Use a jigsaw: each student becomes the expert on one part and teaches it to the group.\n- Ask each student to write in a different colour, so contributions are visible.\n- Pick the reporter at random at the end, so everyone must be ready to explain the group's answer.\n\nWhat if you started with role cards and a random reporter, since they take no preparation?",
            ),
            (
                U,
                "I like the random reporter very much, because it quietly makes everyone responsible without any lecture from me about teamwork.",
            ),
        ],
    ),
    (
        "spreadsheet grades",
        [
            (
                U,
                "I keep my marks in a spreadsheet, and I'd love a formula that turns a percentage in column B into a grade from 1 to 9, using the boundaries our department agreed: 90 for a 9, 80 for an 8, and so on down to 10 for a 1. Could you write it for me?",
            ),
            (
                A,
                'Certainly. If the percentage is in B2, this formula works in both Excel and Google Sheets:\n\n```\n=IF(B2<10, "U", MIN(9, INT(B2/10)))\n```\n\n`INT(B2/10)` turns 84 into 8 and 90 into 9, `MIN` keeps 100 at 9, and anything below 10 becomes U. Fill it down the column and every row updates when a mark changes.',
            ),
            (U, "It works beautifully, thank you; I had been doing it by hand, which is rather embarrassing to admit."),
            (
                A,
                "Plenty of people do! One more idea: conditional formatting on the grade column makes it easy to spot at a glance who is below target.",
            ),
            (U, "What a good idea; I'll set that up this evening."),
        ],
    ),
    (
        "poem analysis",
        [
            (
                U,
                "My Year 10 class is studying 'Ozymandias', and I want to help them move beyond simply saying that the poem is 'about power' towards something more precise and interesting. What questions might I ask them?",
            ),
            (
                A,
                "Questions that push beyond 'it's about power':\n\n- Who actually survives in the poem: the king, the sculptor, or the traveller who tells the story?\n- Why does Shelley frame it as a story told by someone else, rather than describing the statue directly?\n- The sculptor 'well those passions read': is the poem more about art outlasting power than about power fading?\n- What is the effect of 'boundless and bare' at the end, after all the detail of the statue?\n\nThe first question tends to produce the best discussion, because students realise that the artist, not the king, has the last word.",
            ),
            (
                U,
                "The idea that the sculptor has the last word is wonderful, and I hadn't thought about it that way before; I think it will surprise them too.",
            ),
        ],
    ),
    (
        "new teacher mentoring",
        [
            (
                U,
                "I have been asked to mentor a newly qualified teacher this year, and although I'm flattered, I'm also unsure where to begin. What should the first few meetings focus on, so that she feels supported rather than inspected?",
            ),
            (
                A,
                "For the first few meetings, focus on her, not on observations:\n\n1. First meeting: ask what she's most looking forward to and most worried about, and agree how you'll communicate (a weekly slot plus quick questions any time).\n2. Second: behaviour routines for the first weeks, since that's where new teachers most often struggle.\n3. Third: one lesson she's planning, talked through together before she teaches it.\n\nObservations can come later, and it helps if she chooses the focus of the first one.",
            ),
            (
                U,
                "Letting her choose the focus of the first observation is such a thoughtful touch; I remember how frightening my own first observations were.",
            ),
            (
                A,
                "That memory is probably your best mentoring tool: telling her about your own difficult first year will make it easier for her to be honest about hers.",
            ),
            (U, "You're right, and I'll tell her about the day my Year 9 class locked me out of my own classroom."),
        ],
    ),
    (
        "homework debate",
        [
            (
                U,
                "Our department is debating whether to set weekly homework or a longer project every half term, and colleagues feel strongly on both sides. Could you set out the pros and cons of each so that I can present them fairly at the next meeting?",
            ),
            (
                A,
                "Weekly homework versus a half-termly project:\n\n**Weekly homework**\n- Pros: regular retrieval practice, which strengthens memory; easy to spot students falling behind; builds routine.\n- Cons: marking load; often completed hastily; can widen gaps for students without a quiet place to work.\n\n**Half-termly project**\n- Pros: deeper work and more choice; develops independence and planning; fewer but richer pieces to mark.\n- Cons: procrastination until the last week; harder to see who is struggling early; parental help varies.\n\nA compromise some schools use: short weekly retrieval quizzes (self-marked) plus one project per term.",
            ),
            (
                U,
                "That is very even-handed, and the compromise at the end may well be what brings the two camps together, so thank you.",
            ),
        ],
    ),
    (
        "explain osmosis",
        [
            (
                U,
                "Can you explain osmosis in a way that a Year 8 student would understand, ideally with an everyday example?",
            ),
            (
                A,
                "Osmosis is water moving through a thin barrier from where there's more water (and less stuff dissolved in it) to where there's less water (and more stuff dissolved). An everyday example: put a slice of cucumber in very salty water and it goes limp, because water leaves the cucumber cells to dilute the salty water outside. In plain water, the slice stays firm because water moves in.",
            ),
            (
                U,
                "The cucumber is perfect, because it is cheap and dramatic, and they can see the difference by the end of the lesson.",
            ),
        ],
    ),
    (
        "wrong about the quote",
        [
            (
                U,
                "I told my class yesterday that 'All that glitters is not gold' comes from Chaucer, and one of my students insists it is Shakespeare. Which of us is right?",
            ),
            (
                A,
                "Your student is right about the famous wording: 'All that glisters is not gold' appears in Shakespeare's 'The Merchant of Venice' (Act 2, Scene 7). The idea itself is much older, though, and Chaucer does use a version of it in 'The House of Fame', so you weren't entirely wrong about its age.",
            ),
            (
                U,
                "Actually, that is a lovely outcome, because I can congratulate her in front of the class and also tell them about Chaucer, so everybody learns something.",
            ),
        ],
    ),
]

# Longer multi-session conversations, to give the dataset conversations of up to 30 messages.
SAM_LONG = (
    "payments service incident",
    [
        (U, "payments api returning 502 for ~3% of requests since deploy. rollback didn't fix"),
        (
            A,
            "If a rollback didn't fix it, the cause probably isn't the code you deployed. What changed at the same time: infrastructure, config, a dependency, traffic?",
        ),
        (U, "nothing i know of. 502s come from the load balancer"),
        (
            A,
            "A 502 from the load balancer means it got an invalid or no response from a target. Common causes: targets closing keep-alive connections before the load balancer does, targets crashing, or health checks flapping. Check the target group's health history and the LB access log's `target_status_code` for those requests.",
        ),
        (U, "target_status_code is '-' for all of them"),
        (
            A,
            "A dash means the target never sent a response: the connection was closed or reset. That's the signature of an idle-timeout mismatch. What's the app server's keep-alive timeout, and what's the load balancer's idle timeout?",
        ),
        (U, "lb idle 60s. gunicorn keepalive default"),
        (
            A,
            "Gunicorn's default keep-alive is 2 seconds. The load balancer reuses a connection it thinks is open, gunicorn has already closed it, and the request hits a closed socket. The app server's keep-alive must be longer than the load balancer's idle timeout:\n\n```bash\ngunicorn app:app --keep-alive 75 --workers 4\n```",
        ),
        (U, "but this config hasn't changed in a year. why now"),
        (
            A,
            "Good question. Did the deploy change the base image, the gunicorn version, or the worker class? A switch from sync workers to gevent, for example, changes how idle connections are closed.",
        ),
        (U, "base image bumped. gunicorn 21 -> 22"),
        (
            A,
            "That could be it. The rollback reverted your code but did the image tag roll back too? If you rolled back by redeploying the previous commit with a floating `latest` base, you'd get the new gunicorn again.",
        ),
        (U, "floating base tag. yes. rollback pulled new base"),
        (U, "pinned base by digest, set keep-alive 75. 502s at 0 for 30 min"),
        (
            A,
            "That confirms it. Two follow-ups worth doing: pin every base image by digest in the Dockerfile, and add an alert on the load balancer's 5xx rate so you don't have to notice it from user reports.",
        ),
        (U, "alert exists. went to email nobody reads. same problem as the queue outage"),
        (
            A,
            "Then the routing audit you planned after the queue outage is the highest-leverage fix: both incidents were detected late for the same reason.",
        ),
        (U, "yeah. moving it up to this sprint"),
        (U, "wait. should keep-alive be 75 or just > 60"),
        (
            A,
            "Anything comfortably above 60 works; 75 leaves room for clock skew and for the load balancer closing slightly late. Some teams use 65. The important part is the inequality, not the exact number.",
        ),
        (U, "ok keeping 75"),
        (U, "writing the postmortem. timeline: 09:12 deploy, 09:20 first user report, 10:45 fixed"),
        (
            A,
            "Worth adding the detection gap explicitly: eight minutes from deploy to first report, but the LB alert fired at 09:14 and nobody saw it. That is the most useful line in the document.",
        ),
        (U, "added. also: rollback procedure must pin base image"),
        (
            A,
            "Yes, and state it as a change to the procedure, not a reminder to be careful: make the deploy script refuse floating tags.",
        ),
        (U, "deploy script now fails on tags without digest. pr up"),
        (U, "in hindsight the '-' in target_status_code was the whole answer. i've learned to read lb logs first"),
        (
            A,
            "That's a good habit. The load balancer log tells you which side broke the conversation, and that halves the search every time.",
        ),
        (U, "thanks for sticking with it"),
        (A, "Any time. Good luck with the postmortem review."),
    ],
)

MARGARET_LONG = (
    "science fair",
    [
        (
            U,
            "Our school is holding its first science fair in June, and I've volunteered to organise it, which seemed like a wonderful idea at the time and now feels slightly terrifying. Could we make a plan together, step by step?",
        ),
        (
            A,
            "Of course. Let's break it down into four parts: the format (who enters, individual or teams), the timeline for students, the judging, and the day itself. Shall we start with the format?",
        ),
        (
            U,
            "Yes please. I was imagining that Years 7 to 9 could enter, in pairs or small teams, but I'm unsure whether it should be compulsory or voluntary.",
        ),
        (
            A,
            "Voluntary entries tend to produce better projects and happier students, whereas compulsory entry guarantees numbers but often produces rushed work. A middle path: every Year 7 class does a mini-project in lessons, and the best few from each class are invited to the fair, while Years 8 and 9 enter voluntarily.",
        ),
        (
            U,
            "That middle path is lovely, because it means no Year 7 student misses out, and the older ones who come will really want to be there.",
        ),
        (
            A,
            "Next, the timeline. Working back from a fair in mid-June: launch in March, project proposals by Easter, a check-in in May, and the fair itself. Do you want proposals to be approved by a teacher?",
        ),
        (
            U,
            "I think so, mainly for safety, because I can already imagine someone proposing to find out what happens when you mix every chemical in the prep room.",
        ),
        (
            A,
            "A one-page proposal form then: question, hypothesis, method, equipment, and a safety box that a teacher signs. It also makes students think about their method before they start, which improves the projects.",
        ),
        (
            U,
            "What should the judging criteria be? I'd like them to reward good thinking rather than impressive-looking posters made by parents.",
        ),
        (
            A,
            "Four criteria, equally weighted: a clear, testable question; a fair test (variables controlled, repeats); honest interpretation of results, including what went wrong; and how well the students explain it in their own words when a judge asks them. The last one is the best defence against parent-made projects, because the students have to talk about it.",
        ),
        (U, "Oh, that's clever; the conversation with the judge reveals everything."),
        (
            A,
            "Exactly. You could give judges three standard questions: 'What surprised you?', 'What would you change if you did it again?', and 'How do you know your result wasn't luck?'",
        ),
        (U, "I love those questions, and the last one is a lesson in itself. Who should the judges be, do you think?"),
        (
            A,
            "A mix works well: two or three teachers, a governor, and someone from outside, such as a scientist from a local company or university. Outsiders make the students feel the fair matters, and local employers are often pleased to be asked.",
        ),
        (
            U,
            "My neighbour works at the water treatment plant, and I think she would be delighted; I'll ask her this weekend.",
        ),
        (A, "Perfect. Now the day itself. Where will it be held, and how long do you have?"),
        (U, "The sports hall, from lunchtime to the end of the school day, with parents invited for the final hour."),
        (
            A,
            "Then a possible schedule: 12:30 set-up, 13:15 judging while other classes visit in rotation, 15:00 parents arrive, 15:45 prizes. Put the tables in a horseshoe so judges can move in order, and keep power sockets for projects that need them near the walls.",
        ),
        (U, "I hadn't thought about the power sockets at all, which is exactly why I asked for help."),
        (
            A,
            "One more practical detail: a first-aid kit and a clear rule that nothing is heated or ignited in the hall, since it's not a lab.",
        ),
        (
            U,
            "Good point. Looking back at the plan now, I realise it's far more manageable than it felt this morning, because each part has its own small list.",
        ),
        (
            A,
            "That's often the way: a big event is frightening as one thing and quite ordinary as twenty small ones. Would you like the whole plan collected into a single checklist?",
        ),
        (U, "Yes please, that would be wonderful."),
        (
            A,
            "Science fair checklist:\n\n- March: launch assembly; proposal forms out.\n- Before Easter: proposals in and signed off for safety.\n- May: progress check-in with each team.\n- Early June: judges confirmed (teachers, a governor, an outside scientist); criteria and three questions sent to them.\n- One week before: hall booked, tables and sockets planned, first-aid kit, prizes bought.\n- The day: 12:30 set-up, 13:15 judging, 15:00 parents, 15:45 prizes.\n- After: thank-you letters to judges; ask students what they'd change.",
        ),
        (U, "This is marvellous, thank you; I'm going to print it and pin it above my desk."),
    ],
)


def build() -> list[dict]:
    records = []
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    people = [("sam", SAM + [SAM_LONG]), ("margaret", MARGARET + [MARGARET_LONG])]
    day = 0
    for person, conversations in people:
        for number, (title, turns) in enumerate(conversations, start=1):
            moment = start + timedelta(days=day * 3, hours=(day * 5) % 9)
            day += 1
            messages = []
            for index, (role, content) in enumerate(turns):
                messages.append({"role": role, "content": content, "created_at": moment.isoformat()})
                # People take longer to write than the assistant; long gaps mark a later session.
                gap = 40 if role == A else 60 + 25 * len(content) // 40
                if role == U and index > 0 and turns[index - 1][0] == U:
                    gap += 3600 * 5
                moment += timedelta(seconds=gap)
            records.append(
                {
                    "conversation_id": f"demo-{person}-{number:02d}",
                    "title": title,
                    "person": person,
                    "messages": messages,
                }
            )
    return records


def main() -> None:
    target = Path(__file__).with_name("conversations.jsonl")
    records = build()
    with target.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{target}: {len(records)} conversations, {sum(len(r['messages']) for r in records)} messages")


if __name__ == "__main__":
    main()

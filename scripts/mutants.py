"""Puts each realistic bug into a copy of the repository and runs the test that must catch it.

The suite is only as good as the bugs it catches: each entry below is a bug a reviewer once put
into the program on purpose. Run from the repository root: venv/bin/python scripts/mutants.py
(optionally followed by the indexes of the entries to run). Prints CAUGHT or MISSED per entry.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

SRC = pathlib.Path(__file__).resolve().parent.parent
MUTANTS = [
    (
        "gate ignores EC2 status checks",
        "components/health_gate.py",
        "        and checked == len(on_image)\n",
        "",
        "tests/test_health_gate.py::test_gate_fails_on_a_failed_status_check",
    ),
    (
        "gate passes while extra InService instances run another AMI",
        "components/health_gate.py",
        "        len(on_image) >= required\n        and len(on_image) == len(in_service)\n",
        "        len(on_image) >= check.expected_count\n",
        "tests/test_health_gate.py::test_gate_fails_while_an_extra_instance_runs_another_image",
    ),
    (
        "gate checks target health only in the first route's target group",
        "components/health_gate.py",
        "    for route in check.routes:\n        healthy = sum(",
        "    for route in list(check.routes)[:1]:\n        healthy = sum(",
        "tests/test_health_gate.py::test_gate_fails_on_an_unhealthy_target_in_the_second_target_group_only",
    ),
    (
        "gate ignores the group's own Unhealthy mark",
        "components/health_gate.py",
        '    in_service = [i for i in instances if i.lifecycle == "InService" and i.asg_health == "Healthy"]',
        '    in_service = [i for i in instances if i.lifecycle == "InService"]\n'
        '    instances = [i for i in instances if i.asg_health == "Healthy"]',
        "tests/test_health_gate.py::test_gate_fails_while_the_group_marks_an_instance_unhealthy",
    ),
    (
        "a promotion reuses an old gate pass (the switch takes no verdict of its own)",
        "components/traffic_switch.py",
        "    verified = wait_until_fit(args.target, args.fitness, source, exclusive=True)\n",
        "    from components.health_gate import GateClients, observe\n\n"
        "    verified = observe(args.fitness, GateClients.for_target(args.target)).instances\n",
        "tests/test_stories.py::test_target_on_the_switch_takes_a_fresh_verdict",
    ),
    (
        "the guarded release leaves out instance type, key pair, security groups, instance profile",
        "components/release_plan.py",
        '                "instance_type": settings.instance_type,\n'
        '                "key_name": settings.key_name or "",\n'
        '                "security_group_ids": _recorded(list(settings.security_group_ids)),\n'
        '                "instance_profile": _recorded(settings.instance_profile),\n',
        "",
        "tests/test_stories.py::test_instance_settings_of_the_serving_color_are_a_release",
    ),
    (
        "BakedImage reuse ignores the version",
        "components/baked_image.py",
        '        {"Name": "tag:version", "Values": [args.version]},\n',
        "",
        "tests/test_baked_image.py::test_any_change_of_identity_builds_a_new_image",
    ),
    (
        "the build timeout kills Packer but not its process group",
        "components/packer.py",
        "        os.killpg(process.pid, signal.SIGKILL)",
        "        process.kill()",
        "tests/test_baked_image.py::test_build_timeout_kills_packers_children_too",
    ),
    (
        "BakedImage's diff runs Packer during a preview",
        "components/baked_image.py",
        "        replaces = changed_fields(olds, news, REPLACING_FIELDS)\n",
        "        replaces = changed_fields(olds, news, REPLACING_FIELDS)\n"
        "        if replaces:\n            self.create(news)\n",
        "tests/test_baked_image.py::test_check_and_diff_never_run_packer",
    ),
    (
        "Packer run through a shell",
        "components/packer.py",
        "        argv,\n        stdout=subprocess.PIPE,",
        "        ' '.join(argv),\n        shell=True,\n        stdout=subprocess.PIPE,",
        "tests/test_image_template.py::test_packer_gets_no_value_on_its_command_line_and_no_shell",
    ),
]


def run(index: int, name: str, path: str, old: str, new: str, test: str) -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        work = pathlib.Path(scratch) / "repo"
        ignored = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".ruff_cache")
        shutil.copytree(SRC, work, symlinks=True, ignore=ignored)
        file = work / path
        text = file.read_text()
        if old not in text:
            sys.exit(f"entry {index} ({name}) no longer applies: {path} changed; update it")
        file.write_text(text.replace(old, new, 1))
        pytest = [
            str(SRC / "venv/bin/python"),
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:logging",
            "-p",
            "no:cacheprovider",
        ]
        result = subprocess.run([*pytest, test], cwd=work, capture_output=True, text=True)
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    print(f"{'CAUGHT' if result.returncode else 'MISSED'} {index} {name}: {test} -> {last}", flush=True)
    return result.returncode != 0


def main() -> None:
    chosen = [int(index) for index in sys.argv[1:]] or range(len(MUTANTS))
    missed = [index for index in chosen if not run(index, *MUTANTS[index])]
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()

"""What makes a cell's pod safe to admit: the `restricted` Pod Security Standard, and variables that arrive verbatim.

The restricted profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted) asks for
a non-root user (numeric, so the kubelet can check it without reading the image), no privilege escalation, every
capability dropped and the runtime's default seccomp profile; we add a read-only root filesystem, with an
emptyDir at /tmp as the pod's only writable place (the cell folder, HOME, the Keras cache without a PVC).

The kubelet expands `$(NAME)` in environment values and turns `$$` into `$`, so a value from matrix.yaml such as
`$(touch /tmp/pwned)` would be rewritten before the container sees it: every `$` is doubled, and the value
arrives as written. Values are never put into the container's shell command, only into its environment.
"""

from __future__ import annotations

from typing import Any

RUN_AS_USER = 65532  # the conventional "nonroot" uid (distroless); the image's files are world-readable


def literal(value: str) -> str:
    """An environment value the kubelet passes on unchanged (`$` doubled: no `$(VAR)` expansion)."""
    return value.replace("$", "$$")


def env_vars(client: Any, env: dict[str, str]) -> list[Any]:
    return [client.V1EnvVar(name=key, value=literal(value)) for key, value in sorted(env.items())]


def container_security(client: Any) -> Any:
    return client.V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        read_only_root_filesystem=True,
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )


def pod_security(client: Any) -> Any:
    return client.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=RUN_AS_USER,
        fs_group=RUN_AS_USER,
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )


def restricted_pod(client: Any, container: Any, volumes: list[Any]) -> Any:
    """The pod for one worker container: restricted security contexts, and /tmp as an emptyDir (the only
    writable place under the read-only root: the cell folder, HOME, the Keras cache without a PVC)."""
    container.security_context = container_security(client)
    container.volume_mounts = [*(container.volume_mounts or []), client.V1VolumeMount(name="tmp", mount_path="/tmp")]
    volumes = [*volumes, client.V1Volume(name="tmp", empty_dir=client.V1EmptyDirVolumeSource())]
    return client.V1PodSpec(restart_policy="Never", containers=[container], volumes=volumes,
                            security_context=pod_security(client))

# Golden AMI of one release. bluegreen's BakedImage runs `packer build` on this directory with
# every variable in a PKR_VAR_* environment variable (never on the command line, where `ps` shows
# it); nothing here is edited per release.
#
# Config values reach the build instance as data only. Packer reads provisioner settings as Go
# templates and shells read commands as code, so a value crosses those layers base64-encoded and
# is decoded by a constant command: the playbook's variables as one YAML document whose values are
# JSON strings tagged !unsafe (Ansible never templates them), uploaded and read with
# --extra-vars @file; the proxy for the shell step the same way. No value is spliced into a command.

variable "app_name" {
  type        = string
  description = "Application name: AMI name and tag."
}

variable "version" {
  type        = string
  description = "Release version: AMI name and tag, and the artifact version Ansible installs."
}

variable "template_hash" {
  type        = string
  description = "Content hash of this directory, tagged on the AMI so a changed template is a new image."
}

variable "build_hash" {
  type        = string
  description = "Hash of the variables and source that shape the image, tagged on the AMI: reuse must match it too."
}

variable "region" {
  type = string
}

variable "source_ami_name" {
  type    = string
  default = "amzn2-ami-hvm-*-x86_64-gp2"
}

variable "source_ami_owners" {
  type    = list(string)
  default = ["amazon"]
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "security_group_id" {
  type    = string
  default = ""
}

variable "iam_instance_profile" {
  type    = string
  default = ""
}

variable "ssh_username" {
  type    = string
  default = "ec2-user"
}

variable "ec2_endpoint" {
  type        = string
  default     = ""
  description = "EC2 API endpoint of an emulator; empty for real AWS."
}

variable "artifact_repository" {
  type      = string
  default   = ""
  sensitive = true
}

variable "artifact_group_id" {
  type    = string
  default = ""
}

variable "artifact_id" {
  type    = string
  default = ""
}

variable "http_proxy" {
  type      = string
  default   = ""
  sensitive = true
}

variable "vars_file" {
  type        = string
  description = "Local path where the build writes the playbook's variables (JSON) before uploading them."
}

locals {
  # Everything the playbook needs: data, whatever the values hold.
  playbook_vars = join("\n", [
    for name, value in {
      app_name            = var.app_name
      app_version         = var.version
      artifact_repository = var.artifact_repository
      artifact_group_id   = var.artifact_group_id
      artifact_id         = var.artifact_id
      http_proxy          = var.http_proxy
    } : "${name}: !unsafe ${jsonencode(value)}"
  ])
  remote_vars_file = "/tmp/bluegreen-playbook-vars.yml"
}

source "amazon-ebs" "app" {
  region               = var.region
  instance_type        = var.instance_type
  subnet_id            = var.subnet_id
  security_group_id    = var.security_group_id
  iam_instance_profile = var.iam_instance_profile
  custom_endpoint_ec2  = var.ec2_endpoint
  ami_name             = "${var.app_name}-${var.version}-${substr(var.template_hash, 0, 12)}-${substr(var.build_hash, 0, 8)}"
  ami_description      = "${var.app_name} ${var.version} (bluegreen golden image)"

  # The name carries the whole identity (version, template, build hash), so an AMI of this name that
  # was not reused is a half-finished earlier build of the same image, safe to replace.
  force_deregister      = true
  force_delete_snapshot = true

  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = var.source_ami_owners
    most_recent = true
  }

  tags = {
    app           = var.app_name
    version       = var.version
    template_hash = var.template_hash
    build_hash    = var.build_hash
    managed-by    = "bluegreen"
  }
  snapshot_tags = {
    app        = var.app_name
    version    = var.version
    managed-by = "bluegreen"
  }
  # The build instance carries the tag the deployer's IAM policy lets it stop and terminate by.
  run_tags = {
    managed-by = "bluegreen"
  }
}

build {
  # The real image: SSH in, install Ansible, run the playbook.
  source "amazon-ebs.app" {
    name         = "real"
    communicator = "ssh"
    ssh_username = var.ssh_username
  }

  # The same AMI settings with no instance to talk to: what the tests build on an emulator.
  source "amazon-ebs.app" {
    name         = "emulator"
    communicator = "none"
  }

  # Both sources: the playbook's variables written as data (the emulator build stops here, so the
  # tests can read what a real build would upload).
  provisioner "shell-local" {
    environment_vars = [
      "BLUEGREEN_PLAYBOOK_VARS=${base64encode(local.playbook_vars)}",
      "BLUEGREEN_VARS_FILE=${base64encode(var.vars_file)}",
    ]
    inline = [
      "umask 077 && printf '%s' \"$BLUEGREEN_PLAYBOOK_VARS\" | base64 -d > \"$(printf '%s' \"$BLUEGREEN_VARS_FILE\" | base64 -d)\"",
    ]
  }

  provisioner "shell" {
    only             = ["amazon-ebs.real"]
    environment_vars = ["BLUEGREEN_PROXY=${base64encode(var.http_proxy)}"]
    use_env_var_file = true
    inline = [
      "export http_proxy=\"$(printf '%s' \"$BLUEGREEN_PROXY\" | base64 -d)\" && export https_proxy=\"$http_proxy\"",
      "sudo -E yum -y update",
      "sudo -E amazon-linux-extras install -y ansible2",
    ]
  }

  provisioner "file" {
    only        = ["amazon-ebs.real"]
    source      = var.vars_file
    destination = local.remote_vars_file
    generated   = true
  }

  provisioner "ansible-local" {
    only            = ["amazon-ebs.real"]
    playbook_file   = "${path.root}/ansible/setup.yml"
    role_paths      = ["${path.root}/ansible/roles/app"]
    extra_arguments = ["--extra-vars", "@${local.remote_vars_file}"]
  }

  # The variables may hold credentials: they must not be baked into the image.
  provisioner "shell" {
    only   = ["amazon-ebs.real"]
    inline = ["rm -f ${local.remote_vars_file}"]
  }
}

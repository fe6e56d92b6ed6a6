//! Tasks run for real: git repositories in temp dirs, bash, python, ansible-playbook and
//! terraform, through the API of a real server.

mod common;
mod scripts;

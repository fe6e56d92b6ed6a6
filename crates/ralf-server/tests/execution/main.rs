//! Tasks run for real: git repositories in temp dirs, bash, python, ansible-playbook and
//! terraform, through the API of a real server; the service catalog's rollouts of them.

mod ansible;
mod catalog;
mod common;
mod git;
mod inputs;
mod integrations;
mod live;
mod notify;
mod ops;
mod queue;
mod restart;
mod scripts;
mod stop;
mod terraform;

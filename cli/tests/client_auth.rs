//! `kontiki node --auth-file`: clients authenticate as Redis clients do
//! (`AUTH [user] password`, `HELLO 3 AUTH user password`), get Redis's
//! `-NOAUTH` and `-WRONGPASS` replies otherwise, the node's own commands
//! log in with `--password-file` or `KONTIKI_PASSWORD`, and SIGHUP
//! rereads the users.

mod common;

use std::process::Command;

use common::{kontiki, wait_until, Client, ProcessCluster, Reply};

fn error(reply: Reply) -> String {
    match reply {
        Reply::Error(error) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn clients_authenticate_as_redis_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(
        &users,
        "# test users\ndefault s3cret\nalice correct horse\n",
    )
    .unwrap();
    let auth_flag = format!("--auth-file={}", users.display());
    let cluster = ProcessCluster::start_with(&["tokio"], &[&auth_flag]);
    let address = cluster.nodes[0].client;
    wait_until("the node to lead", || {
        Client::connect(address)
            .and_then(|mut client| {
                client.call(&[b"AUTH", b"s3cret"])?;
                client.call(&[b"SET", b"ready", b"1"])
            })
            .is_ok_and(|reply| reply == Reply::Simple("OK".into()))
    });

    let mut client = Client::connect(address).unwrap();
    assert_eq!(
        error(client.call(&[b"GET", b"ready"]).unwrap()),
        "NOAUTH Authentication required."
    );
    assert!(error(client.call(&[b"HELLO", b"3"]).unwrap()).starts_with("NOAUTH HELLO must be"));
    // A malformed command is answered as malformed, as Redis does.
    assert!(error(client.call(&[b"GET"]).unwrap()).contains("wrong number of arguments"));
    let wrong = "WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(error(client.call(&[b"AUTH", b"guess"]).unwrap()), wrong);
    assert_eq!(
        error(client.call(&[b"AUTH", b"alice", b"s3cret"]).unwrap()),
        wrong
    );
    assert_eq!(
        error(client.call(&[b"AUTH", b"mallory", b"s3cret"]).unwrap()),
        wrong
    );
    assert_eq!(
        client.call(&[b"AUTH", b"s3cret"]).unwrap(),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        client.call(&[b"GET", b"ready"]).unwrap(),
        Reply::Bulk(Some(b"1".to_vec()))
    );
    // A failed AUTH afterwards leaves the connection authenticated.
    assert_eq!(error(client.call(&[b"AUTH", b"guess"]).unwrap()), wrong);
    assert_eq!(
        client.call(&[b"GET", b"ready"]).unwrap(),
        Reply::Bulk(Some(b"1".to_vec()))
    );

    // A named user, through HELLO.
    let mut alice = Client::connect(address).unwrap();
    assert_eq!(
        error(
            alice
                .call(&[b"HELLO", b"3", b"AUTH", b"alice", b"wrong"])
                .unwrap()
        ),
        wrong
    );
    assert!(matches!(
        alice
            .call(&[b"HELLO", b"2", b"AUTH", b"alice", b"correct horse"])
            .unwrap(),
        Reply::Array(_)
    ));
    assert_eq!(
        alice.call(&[b"SET", b"who", b"alice"]).unwrap(),
        Reply::Simple("OK".into())
    );

    // The node's own commands log in too.
    let status = |password: Option<&str>| {
        let mut command = kontiki();
        command.args(["status", "--json", &address.to_string()]);
        if let Some(password) = password {
            command.env("KONTIKI_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let refused = status(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stdout).contains("NOAUTH"));
    let refused = status(Some("guess"));
    assert!(String::from_utf8_lossy(&refused.stdout).contains("authentication refused"));
    let answered = status(Some("s3cret"));
    assert!(answered.status.success(), "{answered:?}");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "correct horse\n").unwrap();
    let listed = kontiki()
        .args(["member", "list", "--node", &address.to_string(), "--user"])
        .arg("alice")
        .arg(format!("--password-file={}", password_file.display()))
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");

    // SIGHUP rereads the users: new AUTHs take the new password;
    // connections already in stay in.
    std::fs::write(&users, "default n3w\n").unwrap();
    let pid = cluster.nodes[0].pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_until("the new users to be in force", || {
        Client::connect(address)
            .and_then(|mut client| client.call(&[b"AUTH", b"n3w"]))
            .is_ok_and(|reply| reply == Reply::Simple("OK".into()))
    });
    let mut late = Client::connect(address).unwrap();
    assert_eq!(error(late.call(&[b"AUTH", b"s3cret"]).unwrap()), wrong);
    assert_eq!(
        client.call(&[b"GET", b"who"]).unwrap(),
        Reply::Bulk(Some(b"alice".to_vec()))
    );
}

//! Fuzz target: any text through the planner gives a plan or an error, never a panic; a plan then runs over a
//! few records (decoding, WHERE, aggregates, outputs, HAVING) without a panic either.

fn main() {
    let functions = sql_fuzz::functions();
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match sql::plan_job(text, &functions) {
            Ok(job) => sql_fuzz::run(&job),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    });
}

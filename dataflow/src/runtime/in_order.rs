//! A small operator shape the sinks share: each message of a stream, in arrival order, handed to a function
//! that may answer with one message at the same time. Arrival order matters downstream of the window operator:
//! a barrier separates the final windows of one checkpoint from those of the next, so an operator that
//! regrouped a batch by timestamp (as `map` and `flat_map` may) could move a window across a checkpoint.

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

/// Applies `logic` to every message of `stream` in arrival order, on the same worker; what it returns is sent on
/// at the message's time.
pub fn filter_map_in_order<'s, D, O>(
    stream: StreamVec<'s, u64, D>,
    name: &str,
    mut logic: impl FnMut(D) -> Option<O> + 'static,
) -> StreamVec<'s, u64, O>
where
    D: Clone + 'static,
    O: Clone + 'static,
{
    stream.unary::<CapacityContainerBuilder<Vec<O>>, _, _, _>(Pipeline, name, move |_, _| {
        move |input, output| {
            input.for_each(|cap, data| {
                let mut session = output.session(&cap);
                for d in data.drain(..) {
                    if let Some(o) = logic(d) {
                        session.give(o);
                    }
                }
            });
        }
    })
}

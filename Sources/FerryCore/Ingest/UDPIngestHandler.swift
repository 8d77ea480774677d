import NIOCore

/// Receives datagrams on one receive socket and feeds them to that loop's pipeline.
///
/// NIO reads up to `receive.batch` datagrams per `recvmmsg`; every datagram is
/// one `channelRead`, and `channelReadComplete` ends the burst, which is when
/// the pipeline reserves room and forwards. Nothing here allocates or locks.
package final class UDPIngestHandler: ChannelInboundHandler {
    package typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let pipeline: LoopPipeline

    package init(pipeline: LoopPipeline) {
        self.pipeline = pipeline
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        pipeline.replyChannel = context.channel
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        pipeline.replyChannel = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        pipeline.receive(envelope.data, from: envelope.remoteAddress)
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        pipeline.flush()
        context.flush()  // acknowledgements of frames read in this burst
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A receive socket reports errors such as ICMP for earlier sends; it
        // never sends, so there is nothing to act on. Keep the socket open.
    }
}
